// The files in deploy/ hold what they promise: the systemd unit's readiness, reload and
// hardening (rated by systemd-analyze where it is installed), the logrotate file that rotates
// the unit's log and signals a reopen, the container build's toolchain
// and context, the Kubernetes manifests (kubernetes-validate --strict where installed) and the
// config they ship.
import Foundation
import XCTest

final class DeployFilesTests: EndToEndTestCase {
    private func text(_ path: String) throws -> String {
        try String(contentsOf: RepoPaths.root.appendingPathComponent(path), encoding: .utf8)
    }

    /// Lines that are not comments.
    private func active(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.hasPrefix("#") && !$0.isEmpty }
    }

    /// An executable found on PATH, or nil.
    private func tool(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    func testTheSystemdUnit() throws {
        let lines = active(try text("deploy/systemd/switchyard.service"))
        for directive in ["Type=notify", "NotifyAccess=main", "DynamicUser=yes", "RuntimeDirectory=switchyard",
                          "StateDirectory=switchyard", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                          "AmbientCapabilities=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes", "ProtectSystem=strict",
                          "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "ProtectKernelTunables=yes",
                          "ProtectKernelModules=yes", "ProtectKernelLogs=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                          "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes", "LockPersonality=yes",
                          "RestrictNamespaces=yes"] {
            XCTAssertTrue(lines.contains(directive), "missing \(directive)")
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("LimitNOFILE=") })
        let reload = try XCTUnwrap(lines.first { $0.hasPrefix("ExecReload=") })
        XCTAssertTrue(reload.hasSuffix("switchyard ctl --socket /run/switchyard/control.sock reload"),
                      "a reload that waits for its result: \(reload)")
        XCTAssertFalse(lines.contains { $0.contains("kill -HUP") }, "a signal cannot report a refused config")
    }

    /// The log the unit gives the service is the one logrotate rotates, and the rotation ends
    /// with the signal that makes the proxy open the path again.
    func testLogrotateRotatesTheUnitsLogAndSignalsAReopen() throws {
        let unit = active(try text("deploy/systemd/switchyard.service"))
        XCTAssertTrue(unit.contains("LogsDirectory=switchyard"))
        let lines = active(try text("deploy/logrotate/switchyard"))
        XCTAssertEqual(lines.first, "/var/log/switchyard/access.log {")
        let post = try XCTUnwrap(lines.firstIndex(of: "postrotate"))
        XCTAssertTrue(lines[post + 1].hasPrefix("kill -USR1 $(pidof switchyard)"), lines[post + 1])
        XCTAssertFalse(lines.contains { $0.hasPrefix("create ") && !$0.contains("switchyard") },
                       "a file logrotate creates must be the service's to be reopened")
    }

    func testSystemdAnalyzeRatesTheUnitAtMostTwo() throws {
        guard let analyze = tool("systemd-analyze") else { throw XCTSkip("systemd-analyze is not installed") }
        // --threshold is on the 0-100 scale of the printed 0.0-10.0 exposure.
        let p = try ChildProcess(executable: analyze, arguments: [
            "security", "--offline=true", "--threshold=20", "--no-pager",
            RepoPaths.root.appendingPathComponent("deploy/systemd/switchyard.service").path,
        ])
        XCTAssertNotNil(p.waitForExit(timeout: 60))
        let summary = p.stdout.split(separator: "\n").last { $0.contains("Overall exposure level") }.map(String.init) ?? p.stderr
        XCTAssertEqual(p.poll(), .exited(0), summary)
        let score = summary.split(separator: " ").compactMap { Double($0) }.first
        XCTAssertLessThanOrEqual(try XCTUnwrap(score, summary), 2.0, summary)
    }

    func testTheContainerBuild() throws {
        let lines = active(try text("deploy/container/Containerfile"))
        let froms = lines.filter { $0.hasPrefix("FROM ") }
        XCTAssertEqual(froms.first, "FROM swift:6.3.1-bookworm AS build", "the toolchain CI builds with")
        XCTAssertEqual(froms.last, "FROM debian:bookworm-slim")
        XCTAssertTrue(lines.contains { $0.contains("--static-swift-stdlib") && $0.contains("-c release") })
        XCTAssertTrue(lines.contains { $0.contains("libssl3") && $0.contains("ca-certificates") })
        XCTAssertTrue(lines.contains("STOPSIGNAL SIGTERM"))
        let user = try XCTUnwrap(lines.last { $0.hasPrefix("USER ") })
        XCTAssertFalse(user.contains("root") || user == "USER 0" || user.hasPrefix("USER 0:"), user)
        #if compiler(>=6.3) && !compiler(>=6.4)
        #else
        XCTFail("the Containerfile names Swift 6.3.1; this toolchain differs: update the build image")
        #endif
        for ignore in [".dockerignore", ".containerignore"] {
            let entries = active(try text(ignore))
            XCTAssertTrue(entries.contains(".build"), "\(ignore) keeps .build out of the context")
            XCTAssertTrue(entries.contains(".git"), ignore)
        }
    }

    func testTheKubernetesManifests() throws {
        let manifest = try text("deploy/kubernetes/switchyard.yaml")
        let lines = active(manifest)
        for needed in ["runAsNonRoot: true", "readOnlyRootFilesystem: true", "allowPrivilegeEscalation: false",
                       "capabilities: { drop: [ALL] }", "imagePullPolicy: IfNotPresent", "kind: PodDisruptionBudget",
                       "httpGet: { path: /readyz, port: admin }", "httpGet: { path: /healthz, port: admin }", "preStop:"] {
            XCTAssertTrue(lines.contains { $0.contains(needed) }, "missing \(needed)")
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("requests:") } && lines.contains { $0.hasPrefix("limits:") }, "resources")
        let image = try XCTUnwrap(lines.first { $0.hasPrefix("image:") })
        XCTAssertFalse(image.hasSuffix(":latest") || !image.contains(":"), "a pinned tag: \(image)")
        XCTAssertFalse(lines.contains { $0.contains("subPath") }, "a subPath mount never sees ConfigMap updates")

        let kustomization = active(try text("deploy/kubernetes/kustomization.yaml"))
        XCTAssertTrue(kustomization.contains("- switchyard.yaml") && kustomization.contains("- switchyard.json"))
        XCTAssertTrue(kustomization.contains("disableNameSuffixHash: true"), "one name, reloaded in place")

        // The shipped config: watched, no state file (a pod's disk does not outlive the pod),
        // and valid but for the cluster names this machine cannot resolve.
        let configPath = RepoPaths.root.appendingPathComponent("deploy/kubernetes/switchyard.json").path
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
        XCTAssertTrue(config.contains("\"watchConfig\": true"))
        XCTAssertFalse(config.contains("\"stateFile\""))
        try assertChecksButForClusterNames(configPath)
    }

    /// `switchyard check` finds nothing wrong with the config at `path` but the cluster's
    /// service names, which this machine cannot resolve.
    private func assertChecksButForClusterNames(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let check = try ChildProcess.run(switchyard: ["check", "--config", path])
        let problems = check.stderr.split(separator: "\n").filter { !$0.hasPrefix("warning:") && !$0.contains("cannot resolve") }
        XCTAssertEqual(problems, [], check.stderr, file: file, line: line)
    }

    func testKubernetesValidateStrict() throws {
        try assertValidStrict(RepoPaths.root.appendingPathComponent("deploy/kubernetes/switchyard.yaml").path,
                              kinds: ["deployment", "service", "poddisruptionbudget", "networkpolicy"])
    }

    /// `kubernetes-validate --strict` passes `path` and says so for each of `kinds`.
    private func assertValidStrict(_ path: String, kinds: [String]) throws {
        guard let validate = tool("kubernetes-validate") else {
            throw XCTSkip("kubernetes-validate is not installed (pip install kubernetes-validate)")
        }
        let p = try ChildProcess(executable: validate, arguments: ["--strict", path])
        XCTAssertNotNil(p.waitForExit(timeout: 120))
        XCTAssertEqual(p.poll(), .exited(0), p.stdout + p.stderr)
        for kind in kinds {
            XCTAssertTrue(p.stdout.contains("passed for resource \(kind)/switchyard") || p.stderr.contains("passed for resource \(kind)/switchyard"),
                          p.stdout + p.stderr)
        }
    }

    /// The fleet overlay: the base's manifests, three replicas, the etcd credentials from a
    /// Secret as files, and a config in fleet mode that checks once those files exist.
    func testTheKubernetesFleetOverlay() throws {
        let kustomization = active(try text("deploy/kubernetes-fleet/kustomization.yaml"))
        XCTAssertTrue(kustomization.contains("- ../kubernetes"), "an overlay of deploy/kubernetes")
        XCTAssertTrue(kustomization.contains("behavior: replace") && kustomization.contains("- switchyard.json"), "its own config")
        XCTAssertTrue(kustomization.contains("disableNameSuffixHash: true"), "one name, reloaded in place")
        let patch = active(try text("deploy/kubernetes-fleet/fleet.yaml"))
        XCTAssertTrue(patch.contains("replicas: 3"))
        let secret = try XCTUnwrap(patch.first { $0.hasPrefix("secret:") })
        XCTAssertTrue(secret.contains("secretName: switchyard-etcd") && secret.contains("defaultMode: 0440"), secret)
        XCTAssertTrue(patch.contains { $0.contains("mountPath: /etc/switchyard-etcd") && $0.contains("readOnly: true") })

        let config = try text("deploy/kubernetes-fleet/switchyard.json")
        XCTAssertTrue(config.contains("\"endpoints\": [\"http://etcd.switchyard.svc:2379\"]"))
        XCTAssertFalse(config.contains("\"stateFile\""))
        XCTAssertFalse(config.contains("\"instance\":"), "the host name, which is the pod name")
        // With the Secret's files where the pod has them, the config checks.
        let dir = try temporaryDirectory()
        _ = try writeFile("username", "switchyard\n")
        _ = try writeFile("password", "an etcd password\n")
        let configPath = try writeFile("fleet.json", config.replacingOccurrences(of: "/etc/switchyard-etcd/", with: dir + "/"))
        try assertChecksButForClusterNames(configPath)
    }

    func testKubernetesFleetOverlayRendersAndValidatesStrict() throws {
        guard let kubectl = tool("kubectl") else { throw XCTSkip("kubectl is not installed (it renders the overlay)") }
        let render = try ChildProcess(executable: kubectl, arguments: ["kustomize", RepoPaths.root.appendingPathComponent("deploy/kubernetes-fleet").path])
        XCTAssertNotNil(render.waitForExit(timeout: 120))
        XCTAssertEqual(render.poll(), .exited(0), render.stderr)
        XCTAssertTrue(render.stdout.contains("replicas: 3") && render.stdout.contains("secretName: switchyard-etcd"), render.stdout)
        XCTAssertTrue(render.stdout.contains("etcd.switchyard.svc:2379"), "the ConfigMap holds the fleet's config")
        let rendered = try writeFile("fleet.yaml", render.stdout)
        try assertValidStrict(rendered, kinds: ["configmap", "deployment", "service", "poddisruptionbudget", "networkpolicy"])
    }
}
