// The Clash API's `external_ui`, ours and Go sing-box 1.12.12 held to the same expectations: the
// zip downloaded at start from `external_ui_download_url` through `external_ui_download_detour`
// (the single top directory dropped), the files served at /ui without the secret as Go's
// http.FileServer serves them (index.html, redirects, content types, 404s, `..` and encoded
// slashes kept inside, HEAD, If-Modified-Since, ranges), `GET /` redirecting to /ui/,
// `POST /upgrade/ui` (new content, Go's errors for a missing file, a non-zip, a bad checksum, an
// unknown method, with the directory emptied), a zip-slip archive (ours refuses it, Go writes
// outside the directory), a failed download at start, and no UI at all.
import Foundation
import Testing

@Suite(.serialized) struct ClashAPIExternalUIInteropTests {
    /// Writes the test archives into `directory` with python3's zipfile: `ui.zip` (deflated and
    /// stored files under `dash-gh-pages/`), `v2.zip`, `garbage.zip`, `badcrc.zip`, `bzip2.zip`, `one.zip` (one file, no directory), `slip.zip`.
    private static let zipScript = #"""
        import sys, zipfile, os
        out = sys.argv[1]
        def make(name, entries, method=zipfile.ZIP_DEFLATED):
            with zipfile.ZipFile(os.path.join(out, name), 'w', method) as z:
                for entry in entries:
                    if entry[1] is None:
                        z.writestr(zipfile.ZipInfo(entry[0]), b'')
                    else:
                        z.writestr(entry[0], entry[1], compress_type=entry[2] if len(entry) > 2 else method)
        site = [('dash-gh-pages/', None), ('dash-gh-pages/index.html', b'<html>v1</html>\n'),
                ('dash-gh-pages/assets/', None), ('dash-gh-pages/assets/app.js', b'console.log("yacd");\n' * 40),
                ('dash-gh-pages/assets/app.css', b'body{color:red}\n', zipfile.ZIP_STORED),
                ('dash-gh-pages/assets/LICENSE', b'MIT License\n'),
                ('dash-gh-pages/sub/readme.txt', b'read me\n'), ('dash-gh-pages/sub/a b&c.txt', b'x\n')]
        make('ui.zip', site)
        make('v2.zip', [('other-top/index.html', b'<html>v2</html>\n'), ('other-top/assets/app.js', b'v2\n')])
        open(os.path.join(out, 'garbage.zip'), 'wb').write(b'this is not a zip archive\n' * 20)
        make('badcrc.zip', [('d/a.txt', b'hello checksum world', zipfile.ZIP_STORED)], zipfile.ZIP_STORED)
        data = bytearray(open(os.path.join(out, 'badcrc.zip'), 'rb').read())
        at = data.index(b'hello checksum world')
        data[at] ^= 0x20
        open(os.path.join(out, 'badcrc.zip'), 'wb').write(bytes(data))
        make('bzip2.zip', [('d/a.txt', b'bzip2 data ' * 10)], zipfile.ZIP_BZIP2)
        make('one.zip', [('index.html', b'<html>one</html>\n')])
        make('slip.zip', [('dash/index.html', b'<html>slip</html>\n'), ('dash/../escaped.txt', b'outside\n')])
        """#

    /// One request with curl (`--path-as-is`, so `..` reaches the server): status, head, body.
    private static func request(_ url: String, method: String = "GET", secret: String? = nil,
                                headers: [String] = []) throws -> (status: Int, head: String, body: String) {
        var arguments = ["--silent", "--path-as-is", "--max-time", "10"]
        // -I prints the head alone; -D - -o - the head then the body.
        arguments += method == "HEAD" ? ["-I"] : ["-D", "-", "-o", "-", "-X", method]
        if let secret { arguments += ["-H", "Authorization: Bearer \(secret)"] }
        for header in headers { arguments += ["-H", header] }
        let result = try runTool(Peers.curl, arguments + [url], timeout: 15)
        let text = String(decoding: result.stdout, as: UTF8.self)
        let split = text.range(of: "\r\n\r\n")
        let head = split.map { String(text[..<$0.lowerBound]) } ?? text
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, split.map { String(text[$0.upperBound...]) } ?? "")
    }

    /// A header's value from a response head, nil when absent.
    private static func header(_ name: String, in head: String) -> String? {
        for line in head.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }

    /// Runs `config` with `-D work` (so relative paths are the work directory's) until `api` listens.
    private static func start(_ implementation: Implementation, config: String, api: UInt16, in work: TemporaryDirectory) throws -> Spawned {
        let path = try work.write("\(implementation)-\(api).json", config)
        let process = try Spawned(implementation.binary, ["run", "-D", work.path, "-c", path], name: "\(implementation)-\(api)", directory: work)
        do { try waitForTCP(port: api, process: process, timeout: 20) } catch {
            process.stop()
            throw error
        }
        return process
    }

    private static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// Go's listing of an empty directory (what /ui/ shows once the UI directory is empty).
    private static let emptyListing = "<!doctype html>\n<meta name=\"viewport\" content=\"width=device-width\">\n<pre>\n</pre>\n"

    @Test(arguments: [Implementation.ours, .go])
    func downloadsServesAndUpgradesAsGo(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let files = try FileServer(in: work)
        defer { files.stop() }
        let script = try work.write("zips.py", Self.zipScript)
        let made = try runTool(Peers.python3, [script, files.directory.path])
        try #require(made.status == 0, "\(made.stderr)")
        let zip = { (name: String) in try Data(contentsOf: URL(fileURLWithPath: files.directory.file(name))) }
        let served = files.directory.file("served.zip")
        try zip("ui.zip").write(to: URL(fileURLWithPath: served))
        // A secret next to the UI: no path may reach it.
        _ = try work.write("secret.txt", "top secret\n")

        let api = try freePort()
        // `u${}i$…`: Go's os.ExpandEnv eats `${}` and an unset variable, leaving `ui` (relative to -D).
        let config = """
            {"log":{"level":"info","timestamp":false},
             "experimental":{"clash_api":{"external_controller":"127.0.0.1:\(api)","secret":"s3",
               "external_ui":"u${}i$SBX_EXTUI_SURELY_UNSET","external_ui_download_url":"http://127.0.0.1:\(files.port)/served.zip",
               "external_ui_download_detour":"dl"}},
             "outbounds":[\(ConfigJSON.direct),{"type":"direct","tag":"dl"}]}
            """
        let box = try Self.start(implementation, config: config, api: api, in: work)
        defer { box.stop() }
        let base = "http://127.0.0.1:\(api)"
        let ui = work.file("ui")

        // Downloaded before the API listened, through the detour, the top directory dropped.
        #expect(box.log.contains("clash-api: downloading external ui using outbound/direct[dl]"), "\(box.log)")
        #expect(Self.exists(ui + "/index.html") && Self.exists(ui + "/assets/app.js") && !Self.exists(ui + "/dash-gh-pages"),
                "\(implementation): \((try? FileManager.default.subpathsOfDirectory(atPath: ui)) ?? [])")

        // /ui and the files, without the secret.
        let redirect = try Self.request("\(base)/ui?x=1")
        #expect(redirect.status == 301 && Self.header("Location", in: redirect.head) == "/ui/"
                && redirect.body == "<a href=\"/ui/\">Moved Permanently</a>.\n\n", "\(implementation) \(redirect)")
        #expect(try Self.request("\(base)/ui", method: "POST").status == 405)
        let index = try Self.request("\(base)/ui/")
        #expect(index.status == 200 && index.body == "<html>v1</html>\n"
                && Self.header("Content-Type", in: index.head) == "text/html; charset=utf-8", "\(implementation) \(index)")
        let canonical = try Self.request("\(base)/ui/index.html?a=b")
        #expect(canonical.status == 301 && Self.header("Location", in: canonical.head) == "./?a=b", "\(implementation) \(canonical)")
        let javascript = try Self.request("\(base)/ui/assets/app.js")
        #expect(javascript.status == 200 && javascript.body == String(repeating: "console.log(\"yacd\");\n", count: 40)
                && Self.header("Content-Type", in: javascript.head) == "text/javascript; charset=utf-8"
                && Self.header("Accept-Ranges", in: javascript.head) == "bytes", "\(implementation) \(javascript.head)")
        let style = try Self.request("\(base)/ui/assets/app.css")
        #expect(style.body == "body{color:red}\n" && Self.header("Content-Type", in: style.head) == "text/css; charset=utf-8")
        // No extension: sniffed.
        let license = try Self.request("\(base)/ui/assets/LICENSE")
        #expect(license.body == "MIT License\n" && Self.header("Content-Type", in: license.head) == "text/plain; charset=utf-8")
        // A directory without a slash, a file with one, a directory without index.html.
        let directory = try Self.request("\(base)/ui/sub?q")
        #expect(directory.status == 301 && Self.header("Location", in: directory.head) == "sub/?q", "\(implementation) \(directory)")
        let file = try Self.request("\(base)/ui/assets/app.js/")
        #expect(file.status == 301 && Self.header("Location", in: file.head) == "../app.js", "\(implementation) \(file)")
        let listing = try Self.request("\(base)/ui/sub/")
        #expect(listing.status == 200 && listing.body == """
            <!doctype html>
            <meta name="viewport" content="width=device-width">
            <pre>
            <a href="a%20b&c.txt">a b&amp;c.txt</a>
            <a href="readme.txt">readme.txt</a>
            </pre>

            """, "\(implementation) \(listing)")
        // Missing files and every way out of the directory.
        for path in ["/ui/nope.js", "/ui/index.html/x", "/ui/../secret.txt", "/ui/..%2fsecret.txt", "/ui/%2e%2e/secret.txt",
                     "/ui/..%2f..%2f\(work.path.split(separator: "/").last ?? "")%2fsecret.txt", "/ui/assets/../../secret.txt"] {
            let missing = try Self.request(base + path)
            #expect(missing.status == 404 && missing.body == "404 page not found\n", "\(implementation) \(path): \(missing)")
        }
        // HEAD, conditional and partial GETs.
        let head = try Self.request("\(base)/ui/assets/app.css", method: "HEAD")
        #expect(head.status == 200 && Self.header("Content-Length", in: head.head) == "16" && head.body.isEmpty, "\(implementation) \(head)")
        let modified = Self.header("Last-Modified", in: style.head) ?? ""
        #expect(modified.hasSuffix(" GMT"), "\(style.head)")
        let notModified = try Self.request("\(base)/ui/assets/app.css", headers: ["If-Modified-Since: \(modified)"])
        #expect(notModified.status == 304 && notModified.body.isEmpty, "\(implementation) \(notModified)")
        let stale = try Self.request("\(base)/ui/assets/app.css", headers: ["If-Modified-Since: Thu, 01 Jan 1998 00:00:00 GMT"])
        #expect(stale.status == 200)
        let part = try Self.request("\(base)/ui/assets/app.css", headers: ["Range: bytes=5-9"])
        #expect(part.status == 206 && part.body == "color" && Self.header("Content-Range", in: part.head) == "bytes 5-9/16", "\(part)")
        let beyond = try Self.request("\(base)/ui/assets/app.css", headers: ["Range: bytes=99-"])
        #expect(beyond.status == 416 && beyond.body == "invalid range: failed to overlap\n", "\(implementation) \(beyond)")
        let badRange = try Self.request("\(base)/ui/assets/app.css", headers: ["Range: chars=1-2"])
        #expect(badRange.status == 416 && badRange.body == "invalid range\n", "\(implementation) \(badRange)")
        // An unreadable date is no condition at all.
        #expect(try Self.request("\(base)/ui/assets/app.css", headers: ["If-Modified-Since: garbage"]).status == 200)

        // `/` behind the secret redirects to the UI unless JSON is asked for.
        #expect(try Self.request("\(base)/").status == 401)
        let hello = try Self.request("\(base)/", secret: "s3")
        #expect(hello.status == 307 && Self.header("Location", in: hello.head) == "/ui/", "\(implementation) \(hello)")
        let json = try Self.request("\(base)/", secret: "s3", headers: ["Content-Type: application/json"])
        #expect(json.status == 200 && json.body == "{\"hello\":\"clash\"}\n")

        // Upgrade: behind the secret, POST only, new content.
        #expect(try Self.request("\(base)/upgrade/ui", method: "POST").status == 401)
        #expect(try Self.request("\(base)/upgrade/ui", secret: "s3").status == 405)
        try zip("v2.zip").write(to: URL(fileURLWithPath: served))
        let upgraded = try Self.request("\(base)/upgrade/ui", method: "POST", secret: "s3")
        #expect(upgraded.status == 200 && upgraded.body == "{\"status\":\"ok\"}\n", "\(implementation) \(upgraded)\n\(box.log)")
        #expect(try Self.request("\(base)/ui/").body == "<html>v2</html>\n")
        #expect(box.log.contains("clash-api: upgrading external UI") && box.log.contains("clash-api: updated external UI"), "\(box.log)")

        // Failures, in Go's words: a download error leaves the files, an archive error empties the directory.
        try FileManager.default.removeItem(atPath: served)
        let missing = try Self.request("\(base)/upgrade/ui", method: "POST", secret: "s3")
        #expect(missing.status == 500 && missing.body == "{\"message\":\"download external ui failed: 404 File not found\"}\n",
                "\(implementation) \(missing)")
        #expect(try Self.request("\(base)/ui/").status == 200)
        for (name, message) in [("garbage.zip", "zip: not a valid zip file"), ("badcrc.zip", "zip: checksum error"),
                                ("bzip2.zip", "zip: unsupported compression algorithm")] {
            try zip("v2.zip").write(to: URL(fileURLWithPath: served))
            #expect(try Self.request("\(base)/upgrade/ui", method: "POST", secret: "s3").status == 200)
            try zip(name).write(to: URL(fileURLWithPath: served))
            let failed = try Self.request("\(base)/upgrade/ui", method: "POST", secret: "s3")
            #expect(failed.status == 500 && failed.body == "{\"message\":\"\(message)\"}\n", "\(implementation) \(name): \(failed)")
            #expect(box.log.contains("upgrade external ui: \(message)"), "\(implementation) \(name)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: ui)) == [], "\(implementation) \(name) left files")
            #expect(try Self.request("\(base)/ui/").body == Self.emptyListing)
        }

        // A lone top-level file: Go takes its name for the single directory, strips it and panics
        // (index out of range; net/http drops the connection); ours keeps the file.
        try zip("one.zip").write(to: URL(fileURLWithPath: served))
        let one = try Self.request("\(base)/upgrade/ui", method: "POST", secret: "s3")
        switch implementation {
        case .go: #expect(one.status == 0, "Go no longer panics on a lone file: \(one)")
        case .ours:
            let page = try Self.request("\(base)/ui/").body
            #expect(one.status == 200 && page == "<html>one</html>\n", "\(one) \(page)")
        }

        // Zip-slip: `dash/../escaped.txt` lands beside the UI directory. Go writes it there; ours
        // refuses the archive before writing anything.
        try zip("slip.zip").write(to: URL(fileURLWithPath: served))
        let slip = try Self.request("\(base)/upgrade/ui", method: "POST", secret: "s3")
        switch implementation {
        case .go:
            #expect(slip.status == 200 && Self.exists(work.file("escaped.txt")), "Go no longer writes outside: \(slip)")
        case .ours:
            #expect(slip.status == 500 && slip.body == "{\"message\":\"zip: insecure file path: dash/../escaped.txt\"}\n", "\(slip)")
            #expect(!Self.exists(work.file("escaped.txt")) && (try? FileManager.default.contentsOfDirectory(atPath: ui)) == [])
        }
    }

    /// A download that fails at start is logged and the box runs on with an empty directory (Go
    /// creates it); without `external_ui` there is nothing to upgrade and `/` says hello.
    @Test(arguments: [Implementation.ours, .go])
    func failedDownloadAndNoUIAsGo(implementation: Implementation) throws {
        let work = try TemporaryDirectory()
        let closed = try freePort()
        var api = try freePort()
        let failing = """
            {"log":{"level":"info","timestamp":false},
             "experimental":{"clash_api":{"external_controller":"127.0.0.1:\(api)",
               "external_ui":"\(work.file("nested/ui"))","external_ui_download_url":"http://127.0.0.1:\(closed)/ui.zip"}},
             "outbounds":[\(ConfigJSON.direct)]}
            """
        let box = try Self.start(implementation, config: failing, api: api, in: work)
        defer { box.stop() }
        let prefix = "clash-api: download external ui error: Get \"http://127.0.0.1:\(closed)/ui.zip\": "
        #expect(box.log.contains(prefix) && box.log.contains("connection refused"), "\(implementation): \(box.log)")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: work.file("nested/ui"))) == [])
        #expect(try Self.request("http://127.0.0.1:\(api)/ui/").body == Self.emptyListing)
        box.stop()

        api = try freePort()
        let plain = """
            {"log":{"level":"info","timestamp":false},"experimental":{"clash_api":{"external_controller":"127.0.0.1:\(api)"}},
             "outbounds":[\(ConfigJSON.direct)]}
            """
        let bare = try Self.start(implementation, config: plain, api: api, in: work)
        defer { bare.stop() }
        let upgrade = try Self.request("http://127.0.0.1:\(api)/upgrade/ui", method: "POST")
        #expect(upgrade.status == 404 && upgrade.body == "{\"message\":\"external UI not enabled\"}\n", "\(implementation) \(upgrade)")
        #expect(try Self.request("http://127.0.0.1:\(api)/ui/").status == 404)
        let hello = try Self.request("http://127.0.0.1:\(api)/")
        #expect(hello.status == 200 && hello.body == "{\"hello\":\"clash\"}\n")
    }
}
