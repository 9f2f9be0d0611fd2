// ResolvConfWriter: stub-resolv.conf and resolv.conf in resolved's runtime directory, worded as
// systemd 252 writes them (resolved-resolv-conf.c): the stub file points at our stub listener, the
// uplink file lists the links' servers; both carry every link's search domains. Written to a
// temporary file and renamed, so a reader never sees half a file.
package import Adapter
import Glibc

/// Writes the two files into `directory` (normally /run/systemd/resolve).
package struct ResolvConfWriter: Sendable {
    /// The runtime directory the files go to.
    package let directory: String
    /// The stub listener's address (`127.0.0.53`).
    package let stubAddress: String

    /// A writer for `directory`, naming `stubAddress` as the nameserver of the stub file.
    package init(directory: String, stubAddress: String) {
        self.directory = directory
        self.stubAddress = stubAddress
    }

    /// Rewrites both files for `links`. Errors name the file (`open /run/…/resolv.conf: Permission denied`).
    package func write(links: [ResolvedLink]) throws(Resolve1Error) {
        try makeDirectory()
        var search: [String] = []
        for link in links {
            for domain in link.domains where !domain.routingOnly && !domain.name.isEmpty && !search.contains(domain.name) {
                search.append(domain.name)
            }
        }
        var servers: [String] = []
        for link in links {
            for server in link.servers where !servers.contains(server.address.description) {
                servers.append(server.address.description)
            }
        }
        try replace("stub-resolv.conf", with: stubContents(search: search))
        try replace("resolv.conf", with: uplinkContents(servers: servers, search: search))
    }

    func stubContents(search: [String]) -> String {
        var text = """
        # This is \(directory)/stub-resolv.conf managed by man:systemd-resolved(8).
        # Do not edit.
        #
        # This file might be symlinked as /etc/resolv.conf. If you're looking at
        # /etc/resolv.conf and seeing this text, you have followed the symlink.
        #
        # This is a dynamic resolv.conf file for connecting local clients to the
        # internal DNS stub resolver of systemd-resolved. This file lists all
        # configured search domains.
        #
        # Run "resolvectl status" to see details about the uplink DNS servers
        # currently in use.
        #
        # Third party programs should typically not access this file directly, but only
        # through the symlink at /etc/resolv.conf. To manage man:resolv.conf(5) in a
        # different way, replace this symlink by a static file or a different symlink.
        #
        # See man:systemd-resolved.service(8) for details about the supported modes of
        # operation for /etc/resolv.conf.

        nameserver \(stubAddress)
        options edns0 trust-ad

        """
        if !search.isEmpty { text += "search \(search.joined(separator: " "))\n" }
        return text
    }

    func uplinkContents(servers: [String], search: [String]) -> String {
        var text = """
        # This is \(directory)/resolv.conf managed by man:systemd-resolved(8).
        # Do not edit.
        #
        # This file might be symlinked as /etc/resolv.conf. If you're looking at
        # /etc/resolv.conf and seeing this text, you have followed the symlink.
        #
        # This is a dynamic resolv.conf file for connecting local clients directly to
        # all known uplink DNS servers. This file lists all configured search domains.
        #
        # Third party programs should typically not access this file directly, but only
        # through the symlink at /etc/resolv.conf. To manage man:resolv.conf(5) in a
        # different way, replace this symlink by a static file or a different symlink.
        #
        # See man:systemd-resolved.service(8) for details about the supported modes of
        # operation for /etc/resolv.conf.


        """
        if servers.isEmpty {
            text += "# No DNS servers known.\n"
        } else {
            // glibc reads at most three (MAXNS); resolved says so before the rest.
            for (offset, server) in servers.enumerated() {
                if offset == 3 { text += "# Too many DNS servers configured, the following entries may be ignored.\n" }
                text += "nameserver \(server)\n"
            }
        }
        if !search.isEmpty { text += "search \(search.joined(separator: " "))\n" }
        return text
    }

    private func makeDirectory() throws(Resolve1Error) {
        var path = ""
        for component in directory.split(separator: "/") {
            path += "/\(component)"
            if mkdir(path, 0o755) == 0 {
                // The unit's UMask may be 0077; resolv.conf readers are every user.
                chmod(path, 0o755)
            } else if errno != EEXIST {
                throw .system("mkdir \(path)", errno)
            }
        }
    }

    private func replace(_ name: String, with contents: String) throws(Resolve1Error) {
        let target = "\(directory)/\(name)"
        let temporary = "\(directory)/.#\(name)\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .system("open \(temporary)", errno) }
        var bytes = Array(contents.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if result < 0 {
                let code = errno
                close(fd)
                unlink(temporary)
                throw .system("write \(temporary)", code)
            }
            written += result
        }
        bytes.removeAll()
        fchmod(fd, 0o644)
        close(fd)
        guard rename(temporary, target) == 0 else {
            let code = errno
            unlink(temporary)
            throw .system("rename \(target)", code)
        }
    }

    /// ResolvConfMode as resolved reports it: how /etc/resolv.conf relates to our files —
    /// "stub", "uplink", "static" (systemd's /usr/lib/systemd/resolv.conf), "missing" or "foreign".
    package static func mode(runtimeDirectory: String, etcPath: String = "/etc/resolv.conf") -> String {
        var info = stat()
        guard lstat(etcPath, &info) == 0 else { return "missing" }
        guard let resolved = realpath(etcPath, nil) else { return "missing" }
        defer { free(resolved) }
        let target = String(cString: resolved)
        func real(_ path: String) -> String? {
            guard let pointer = realpath(path, nil) else { return nil }
            defer { free(pointer) }
            return String(cString: pointer)
        }
        if target == real("\(runtimeDirectory)/stub-resolv.conf") { return "stub" }
        if target == real("\(runtimeDirectory)/resolv.conf") { return "uplink" }
        if target == real("/usr/lib/systemd/resolv.conf") { return "static" }
        return "foreign"
    }
}
