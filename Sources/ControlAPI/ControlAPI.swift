// ControlAPI: the Clash API (Go's experimental/clashapi) over HTTP/1.1 on `external_controller`.
//
// Served: `/` (hello), `/version`, `/configs` (GET, PUT, PATCH mode), `/proxies` (GET), and per
// proxy GET, PUT (a selector's member) and `/delay` (a HEAD of the test URL through it), with
// `secret` bearer authentication and CORS as Go configures them. Not served here: `/logs`,
// `/traffic`, `/memory`, `/connections`, `/rules`, `/providers`, `/dns`, `/cache`, the
// WebSocket forms and `external_ui`; those answer 404.
//
// 1. `ClashAPIServer` listens and gives each connection NIO's HTTP/1 codec and a
//    `ClashAPIConnectionHandler`.
// 2. The handler collects one request (head and body, at most 1 MiB), answers CORS preflights,
//    checks the secret, then asks `ClashAPIRoutes` for the response (async for delay tests).
// 3. Responses are JSON as Go's `render.JSON` writes it (compact, HTML-safe, a trailing newline).
// Imports: Adapter, Config, Group (the groups' state), NIOCore, NIOPosix, NIOHTTP1. Nothing imports
// this module but the CLI, which hands it to the box (`SingBox.clashAPIServerFactory`).
