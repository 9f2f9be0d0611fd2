// The external UI's download (Go's server_resources.go): at start when the directory is missing or
// empty, and for `POST /upgrade/ui`.
//
// 1. the outbound: `external_ui_download_detour`, else the default one
// 2. `GET external_ui_download_url` (default Yacd-meta's gh-pages zip) through it, redirects
//    followed; anything but 200 is `download external ui failed: <status>`
// 3. read the zip; when every file sits under one top directory, that directory is dropped (Go's
//    `zipIsInSingleDirectory`)
// 4. refuse the archive before writing anything if an entry would land outside the directory
//    (zip-slip: Go would write it), then write every file, directories 0755, files 0666 less umask
// 5. any failure in 3–4 empties the directory, as Go does.
import Adapter
import Config
import Glibc

extension ClashAPIExternalUI {
    /// Go's default `external_ui_download_url`.
    static let defaultDownloadURL = "https://github.com/MetaCubeX/Yacd-meta/archive/gh-pages.zip"

    /// Go's `checkAndDownloadExternalUI`, run before the API listens: downloads the UI when its
    /// directory is missing (created first) or empty; a failure is logged, never fatal.
    func prepare() async {
        guard !directory.isEmpty else { return }
        let entries = Self.directoryEntries(directory)
        if entries == nil { _ = Self.makeDirectories(directory) }
        guard entries?.isEmpty ?? true else { return }
        do {
            try await download()
        } catch {
            setup.logger.error("download external ui error: \(error)")
        }
    }

    /// Go's `downloadExternalUI`: fetches the zip through the detour (or default) outbound and
    /// unpacks it into the directory. Throws the error Go would return, worded as Go's.
    func download() async throws {
        let configuredURL = setup.options.externalUIDownloadURL ?? ""
        let url = configuredURL.isEmpty ? Self.defaultDownloadURL : configuredURL
        let detour = setup.options.externalUIDownloadDetour ?? ""
        let outbound: any Outbound
        if !detour.isEmpty {
            guard let found = setup.outbounds.outbound(detour) else {
                throw AdapterError(.notFound, "detour outbound not found: \(detour)")
            }
            outbound = found
        } else {
            guard let found = setup.outbounds.defaultOutbound else { throw AdapterError(.notFound, "missing default outbound") }
            outbound = found
        }
        setup.logger.info("downloading external ui using outbound/\(outbound.type)[\(outbound.tag)]")
        let response = try await setup.download(outbound, url)
        guard response.code == 200 else { throw AdapterError(.other, "download external ui failed: \(response.status)") }
        do {
            try Self.extract(response.body, into: directory)
        } catch {
            Self.removeAll(in: directory)
            throw error
        }
    }

    /// Unpacks the zip `bytes` into `output` (step 3–4 above). Throws `ZipError` for a bad
    /// archive or an escaping entry, and the file system's error (`open ui/x: …`) for a failed write.
    static func extract(_ bytes: [UInt8], into output: String) throws(ZipError) {
        let archive = try ZipArchive(bytes)
        let files = archive.entries.filter { !$0.isDirectory }
        let trim = isInSingleDirectory(files)
        var plan: [(entry: ZipArchive.Entry, relative: [Substring])] = []
        for entry in files {
            var elements = entry.name.split(separator: "/", omittingEmptySubsequences: false)
            if trim { elements.removeFirst() }
            // Go joins the elements with filepath.Join, which resolves `..`: refuse any that climbs out.
            var cleaned: [Substring] = []
            for element in elements {
                switch element {
                case "", ".": continue
                case "..":
                    guard !cleaned.isEmpty else { throw ZipError("zip: insecure file path: \(entry.name)") }
                    cleaned.removeLast()
                default: cleaned.append(element)
                }
            }
            plan.append((entry, cleaned))
        }
        for (entry, relative) in plan {
            let contents = try archive.contents(of: entry)
            let parent = ([Substring(output)] + relative.dropLast()).joined(separator: "/")
            if let failure = makeDirectories(parent) { throw ZipError("mkdir \(parent): \(failure)") }
            let path = ([Substring(output)] + relative).joined(separator: "/")
            if let failure = writeFile(path, contents) { throw ZipError("open \(path): \(failure)") }
        }
    }

    /// Go's `zipIsInSingleDirectory`, except that a file at the top level means no single
    /// directory (Go then strips the file's own name and panics).
    static func isInSingleDirectory(_ files: [ZipArchive.Entry]) -> Bool {
        var top: Substring?
        for file in files {
            let elements = file.name.split(separator: "/", omittingEmptySubsequences: false)
            guard elements.count > 1 else { return false }
            if top == nil { top = elements[0] } else if top != elements[0] { return false }
        }
        return true
    }

    // MARK: File system

    /// The names in `path` (without `.` and `..`); nil when it cannot be read as a directory.
    static func directoryEntries(_ path: String) -> [String]? {
        guard let handle = opendir(path) else { return nil }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// `mkdir -p` with mode 0755; the error text when it failed.
    @discardableResult
    static func makeDirectories(_ path: String) -> String? {
        var info = Glibc.stat()
        if stat(path, &info) == 0 { return info.st_mode & S_IFMT == S_IFDIR ? nil : "not a directory" }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex, let failure = makeDirectories(String(path[..<slash])) {
            return failure
        }
        if mkdir(path, 0o755) != 0, errno != EEXIST { return errorText(errno) }
        return nil
    }

    /// Creates or truncates `path` (0666 less umask) and writes `bytes`; the error text when it failed.
    private static func writeFile(_ path: String, _ bytes: [UInt8]) -> String? {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o666)
        guard fd >= 0 else { return errorText(errno) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return errorText(errno)
            }
            offset += written
        }
        return nil
    }

    /// Go's `removeAllInDirectory`: everything inside `path`, not `path` itself.
    static func removeAll(in path: String) {
        for name in directoryEntries(path) ?? [] { removeTree(path + "/" + name) }
    }

    private static func removeTree(_ path: String) {
        var info = Glibc.stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            for name in directoryEntries(path) ?? [] { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Go's wording of an errno: `no such file or directory`.
    private static func errorText(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }
}
