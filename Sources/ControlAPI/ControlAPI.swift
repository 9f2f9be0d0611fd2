// ControlAPI: the Clash API (Go's experimental/clashapi) over HTTP/1.1 on `external_controller`.
//
// Served: `/` (hello), `/version`, `/configs` (GET, PUT, PATCH mode), `/proxies` (GET), and per
// proxy GET, PUT (a selector's member) and `/delay` (a HEAD of the test URL through it),
// `/connections` (GET snapshot, DELETE all or one by id, WebSocket pushes), and the streams
// `/traffic`, `/memory`, `/logs` (chunked JSON lines or WebSocket text frames, see
// ClashAPIStreams.swift), `/rules`, `/dns/query`, `/cache/fakeip/flush`, the meta `/group`
// routes and Go's provider/script/profile stubs (ClashAPIRoutes+Resources.swift), with `secret`
// bearer authentication (or `token` for WebSockets) and CORS as Go configures them. The flows come
// from the box's `ConnectionTracker`, the log lines from its `LogObserver`, the rules and the DNS
// router's part from `ClashAPISetup`; `external_ui` at `/ui`, the `/` redirect and `/upgrade/ui` in
// ClashAPIExternalUI.swift.
//
// 1. `ClashAPIServer` listens and gives each connection NIO's HTTP/1 codec and a
//    `ClashAPIConnectionHandler`.
// 2. The handler collects one request (head and body, at most 1 MiB), answers CORS preflights,
//    checks the secret, then asks `ClashAPIRoutes` for the response (async for delay tests).
// 3. Responses are JSON as Go's `render.JSON` writes it (compact, HTML-safe, a trailing newline).
// Imports: Adapter, Config, DNS (queries and record text), Group (the groups' state), Transport (WebSocket frames), Rules (zlib for the UI zip), NIOCore, NIOPosix, NIOHTTP1. Nothing imports
// this module but the CLI, which hands it to the box (`SingBox.clashAPIServerFactory`).
