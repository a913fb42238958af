import AtriumLocal
import Foundation
import Logging

/// Start-up check of the local backend's workspace program: the hub finds out before any
/// student presses Start whether the program exists, and, for the Jupyter presets, can make it
/// exist (a Python environment of its own, so no PEP 668 trap and no PATH to guess).
public enum WorkspaceProgram {
    /// The Python environment the Jupyter presets use when their program is not on `PATH`:
    /// `local.python_env`, or `/opt/atrium/jupyter` for root, `~/.local/share/atrium/jupyter` else.
    public static func defaultPythonEnvironment(isRoot: Bool = getuid() == 0, home: String = NSHomeDirectory()) -> String {
        isRoot ? "/opt/atrium/jupyter" : "\(home)/.local/share/atrium/jupyter"
    }

    /// The first folder on the way to `path` (itself included when a folder) that other users
    /// cannot pass through (no `o+x`), or nil when everyone can reach it.
    public static func unreachableFolder(_ path: String) -> String? {
        var current = ""
        let parts = URL(fileURLWithPath: path).standardizedFileURL.path.split(separator: "/")
        for (index, part) in parts.enumerated() {
            current += "/" + part
            var info = stat()
            guard stat(current, &info) == 0 else { return nil }
            let isFolder = info.st_mode & S_IFMT == S_IFDIR
            if isFolder, info.st_mode & 0o001 == 0 { return current }
            if !isFolder, index == parts.count - 1, info.st_mode & 0o001 == 0 { return current }
        }
        return nil
    }

    /// The pip packages that provide each preset's program.
    static let pipPackages: [String: [String]] = [
        "jupyterlab": ["jupyterlab"],
        "jupyter-server": ["jupyter-server", "ipykernel"],
    ]

    /// The directories searched for the program, in order: the hub's own folder, the Python
    /// environment's `bin`, then `PATH`.
    public static func searchPath(extraPath: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> [String] {
        extraPath + (environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
    }

    /// What to tell the instructor when `program` is missing.
    static func missingMessage(program: String, preset: String?, directories: [String], pythonEnvironment: String) -> String {
        var text = "the workspace program \(program) was not found (searched \(directories.joined(separator: ":"))).\n"
        if let preset, let packages = pipPackages[preset] {
            text += """
                Install it in Atrium's own Python environment (no system Python changes, no PATH to set):
                  python3 -m venv \(pythonEnvironment) && \(pythonEnvironment)/bin/pip install \(packages.joined(separator: " "))
                (On Debian, `apt-get install python3-venv` first if venv is missing.) Or let the hub do it at start-up: \
                set local.setup_python_env: true. Or choose another program with local.preset or local.command.
                """
        } else {
            text += "Install it, give its full path in local.command, or choose another local.preset."
        }
        return text
    }

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// Makes sure the local backend's program exists. For a Jupyter preset with
    /// `setupPythonEnvironment`, a missing program is installed into the Python environment
    /// (pip's progress goes to standard error); otherwise a missing program stops start-up with
    /// the exact commands to run. Returns the program's path.
    /// With `forOtherUsers` (workspaces run as students' accounts), a program only the hub's
    /// user can reach (root's pyenv) counts as missing, and the environment is made from the
    /// system's Python, which every account can run.
    public static func ensure(
        command: [String], preset: String?, extraPath: [String], pythonEnvironment: String, setupPythonEnvironment: Bool,
        forOtherUsers: Bool = false, logger: Logger
    ) throws -> String {
        guard let program = command.first, !program.isEmpty else { throw Missing(description: "local.command is empty") }
        let directories = searchPath(extraPath: extraPath)
        if let found = LocalBackend.locate(program, in: directories) {
            let resolved = URL(fileURLWithPath: found).resolvingSymlinksInPath().path
            if !forOtherUsers || (unreachableFolder(found) == nil && unreachableFolder(resolved) == nil) { return found }
            if preset == nil || pipPackages[preset!] == nil || !setupPythonEnvironment { return found }  // the caller names the closed folder
            logger.notice("the workspace program is closed to students' accounts; making a Python environment they can use", metadata: ["atrium.program": "\(found)"])
        }
        guard setupPythonEnvironment, let preset, let packages = pipPackages[preset] else {
            throw Missing(description: missingMessage(program: program, preset: preset, directories: directories, pythonEnvironment: pythonEnvironment))
        }
        logger.notice(
            "workspace program missing: creating a Python environment for it",
            metadata: ["atrium.program": "\(program)", "atrium.python_env": "\(pythonEnvironment)", "atrium.packages": "\(packages)"])
        FileHandle.standardError.write(Data("Atrium: \(program) is not installed; installing \(packages.joined(separator: " ")) into \(pythonEnvironment) (a few minutes)…\n".utf8))
        let python = forOtherUsers && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        try run([python, "-m", "venv", pythonEnvironment], failure: """
            could not create the Python environment \(pythonEnvironment). On Debian: apt-get install python3-venv, then start the hub again.
            """)
        try run(["\(pythonEnvironment)/bin/pip", "install", "--progress-bar", "on", "--disable-pip-version-check"] + packages, failure: """
            pip could not install \(packages.joined(separator: " ")) into \(pythonEnvironment) (see its output above).
            """)
        guard let found = LocalBackend.locate(program, in: [pythonEnvironment + "/bin"]) ?? LocalBackend.locate(program, in: directories) else {
            throw Missing(description: missingMessage(program: program, preset: preset, directories: directories, pythonEnvironment: pythonEnvironment))
        }
        FileHandle.standardError.write(Data("Atrium: \(program) is ready at \(found).\n".utf8))
        return found
    }

    /// Runs a set-up command with its output on the hub's standard error.
    static func run(_ arguments: [String], failure: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.standardError
        process.standardError = FileHandle.standardError
        do { try process.run() } catch { throw Missing(description: "\(failure) (\(error))") }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Missing(description: failure) }
    }
}
