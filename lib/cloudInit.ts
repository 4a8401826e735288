// The server's cloud-init user data. Pure, so `cloud-init schema` can check exactly what is rendered.
import { LOG_OPTIONS } from "./containers";

/** Host directories the platform's containers mount; created at first boot. */
export const HOST_DIRS = {
    root: "/srv/platform",
    nginx: "/srv/platform/nginx",
    certs: "/srv/platform/certs",
    acme: "/srv/platform/acme",
    letsencrypt: "/srv/platform/letsencrypt",
} as const;

export interface CloudInitArgs {
    /** Public key allowed to log in as root (key only: password logins are off). */
    readonly sshPublicKey: string;
}

const SSHD_HARDENING = [
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "X11Forwarding no",
    "AllowTcpForwarding local",
    "MaxAuthTries 3",
    "",
].join("\n");

const AUTO_UPGRADES = ['APT::Periodic::Update-Package-Lists "1";', 'APT::Periodic::Unattended-Upgrade "1";', ""].join("\n");

// Rotated container logs by default, and containers that keep running while dockerd restarts (an
// unattended upgrade of docker.io must not take the sites down).
const DOCKER_DAEMON = JSON.stringify({ "live-restore": true, "log-driver": "json-file", "log-opts": LOG_OPTIONS }, null, 2) + "\n";

// Old releases stay on disk for fast rollbacks (RemoteImage keepLocally); prune the ones older than a month.
const IMAGE_PRUNE_CRON = "17 4 * * 0 root docker image prune --all --force --filter until=720h >/dev/null 2>&1\n";

function block(text: string, depth: number): string {
    const pad = " ".repeat(depth);
    return text
        .split("\n")
        .map((l) => (l === "" ? "" : pad + l))
        .join("\n");
}

/**
 * Ubuntu's own docker.io package rather than Docker's apt repository: one less signing key to trust,
 * and it receives security fixes through the same unattended-upgrades as the rest of the system.
 */
export function renderCloudInit(args: CloudInitArgs): string {
    if (!/^[A-Za-z0-9@.+/=_ -]+$/.test(args.sshPublicKey.trim())) throw new Error("sshPublicKey has characters that do not belong in a public key");
    return [
        "#cloud-config",
        "package_update: true",
        "package_upgrade: true",
        "packages:",
        "  - docker.io",
        "  - unattended-upgrades",
        "  - ca-certificates",
        "  - openssl",
        "ssh_pwauth: false",
        "disable_root: false",
        "users:",
        "  - name: root",
        "    ssh_authorized_keys:",
        `      - ${args.sshPublicKey.trim()}`,
        "write_files:",
        "  - path: /etc/ssh/sshd_config.d/10-platform.conf",
        "    permissions: '0644'",
        "    content: |",
        block(SSHD_HARDENING, 6),
        "  - path: /etc/apt/apt.conf.d/20auto-upgrades",
        "    permissions: '0644'",
        "    content: |",
        block(AUTO_UPGRADES, 6),
        "  - path: /etc/docker/daemon.json",
        "    permissions: '0644'",
        "    content: |",
        block(DOCKER_DAEMON, 6),
        "  - path: /etc/cron.d/platform-image-prune",
        "    permissions: '0644'",
        "    content: |",
        block(IMAGE_PRUNE_CRON, 6),
        "runcmd:",
        `  - [mkdir, -p, ${Object.values(HOST_DIRS).join(", ")}]`,
        "  - [systemctl, enable, --now, docker]",
        "  - [systemctl, restart, docker]",
        "  - [systemctl, reload, ssh]",
        "  - [systemctl, enable, --now, unattended-upgrades]",
        "",
    ].join("\n");
}
