// The server's cloud-init user data, and the SSH hardening it installs (also re-applied to existing
// servers by ScalewayHost's ssh-guard command). Pure, so the real `cloud-init schema`, `sshd -T` and
// `fail2ban-client -t` can check exactly what is rendered.
import * as net from "net";
import { isCidr, isHeartbeatUrl, isSshPublicKey } from "./values";
import { LOG_OPTIONS } from "./containers";

/** Host directories the platform's containers mount; created at first boot. */
export const HOST_DIRS = {
    root: "/srv/platform",
    nginx: "/srv/platform/nginx",
    certs: "/srv/platform/certs",
    acme: "/srv/platform/acme",
    letsencrypt: "/srv/platform/letsencrypt",
} as const;

/**
 * Ubuntu 24.04's sshd_config starts with `Include /etc/ssh/sshd_config.d/*.conf`, and for most keywords
 * the first value sshd reads wins. The drop-in's name sorts before cloud-init's 50-cloud-init.conf,
 * the image's 60-cloudimg-settings.conf and everything in the main file, so these settings hold.
 */
export const SSHD_DROPIN_PATH = "/etc/ssh/sshd_config.d/00-platform.conf";
/** The drop-in earlier versions wrote; superseded by SSHD_DROPIN_PATH and removed by the guard. */
export const LEGACY_SSHD_DROPIN_PATH = "/etc/ssh/sshd_config.d/10-platform.conf";
/** `.local` files in jail.d are read after Debian's defaults-debian.conf, so they override it. */
export const FAIL2BAN_JAIL_PATH = "/etc/fail2ban/jail.d/platform-sshd.local";

/** Where the admin channel's SSH local forward lands on the server (PostgreSQL's loopback port). */
export const DEFAULT_PERMIT_OPEN: readonly string[] = ["127.0.0.1:5432"];

export interface SshHardeningArgs {
    /**
     * `host:port` destinations an SSH local forward may reach (sshd PermitOpen); nothing else can be
     * forwarded. Default: the admin channel's 127.0.0.1:5432.
     */
    readonly permitOpen?: readonly string[];
    /** Port 22 is open to every address: fail2ban's sshd jail is installed and enabled. */
    readonly sshFromAnywhere?: boolean;
    /** CIDRs fail2ban never bans (the operators' and CI's fixed addresses). */
    readonly adminCidrs?: readonly string[];
}

export interface CloudInitArgs extends SshHardeningArgs {
    /** Public key allowed to log in as root (key only: password logins are off). */
    readonly sshPublicKey: string;
    /** hostScripts/check-alerts.sh's text: installed with its settings and a cron job (every 5 minutes). */
    readonly alertsScript?: string;
}

/** The alerts checker on a server: script, settings, cron job (components/scalewayHost.ts passes the script). */
export const ALERTS_SCRIPT_PATH = "/srv/platform/bin/check-alerts.sh";
export const ALERTS_SETTINGS_PATH = "/srv/platform/alerts.env";
export const ALERTS_CRON_PATH = "/etc/cron.d/platform-alerts";

/**
 * The checker's settings on a server. The domain and the heartbeat URL are read at run time from the
 * certificate job's and the backups' own settings files (written by the program on every up), so a
 * changed platform:backupHeartbeatUrl reaches the checker without touching cloud-init's files.
 */
export function renderAlertsSettings(options: { webhookUrl?: string } = {}): string {
    const webhook = options.webhookUrl ?? "";
    // Checked again here, as the checker checks it: the value is single-quoted into a file the shell sources.
    if (webhook !== "" && !isHeartbeatUrl(webhook)) throw new Error("alerts: the webhook URL is not a plain https URL");
    const settings: Record<string, string> = {
        DOCKER_SOCKET: "/var/run/docker.sock",
        DISK_PATHS: "/",
        DISK_MAX_PERCENT: "90",
        CERT_CONNECT: "127.0.0.1:443",
        CERT_SETTINGS_FILE: `${HOST_DIRS.root}/certificate.env`,
        CERT_MIN_DAYS: "14",
        BACKUP_LOG: "/var/log/platform-backup.log",
        BACKUP_SETTINGS_FILE: `${HOST_DIRS.root}/backup/backup.env`,
        BACKUP_MAX_HOURS: "26",
        NGINX_CONF: `${HOST_DIRS.nginx}/nginx.conf`,
        EDGE_CONTAINER: "platform-edge",
        RESTART_LOOP: "3",
        STATE_DIR: "/var/lib/platform-alerts",
        ...(webhook !== "" ? { WEBHOOK_URL: webhook } : {}),
    };
    return ["# Managed by the platform: settings of check-alerts.sh, run by /etc/cron.d/platform-alerts.", ...Object.entries(settings).map(([k, v]) => `${k}='${v}'`), ""].join("\n");
}

/**
 * Installs the same three files on a running server (cloud-init only ran at its first boot), and the
 * two packages the checker needs if they are missing. Idempotent; run as root. The settings come on
 * stdin (renderAlertsSettings, a secret: they may carry the webhook URL), never in the script's text.
 */
export function renderAlertsInstallScript(alertsScript: string): string {
    return [
        "set -eu",
        "umask 022",
        "mkdir -p /srv/platform/bin",
        "if ! command -v nc >/dev/null 2>&1 || ! command -v wget >/dev/null 2>&1; then",
        "    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq netcat-openbsd wget >/dev/null || echo 'alerts: could not install netcat-openbsd/wget; the checker reports the Docker API as unreachable' >&2",
        "fi",
        heredoc(`${ALERTS_SCRIPT_PATH}.new`, alertsScript, "PLATFORM_ALERTS_SCRIPT"),
        `chmod 0755 ${ALERTS_SCRIPT_PATH}.new && mv -f ${ALERTS_SCRIPT_PATH}.new ${ALERTS_SCRIPT_PATH}`,
        `(umask 077 && cat > ${ALERTS_SETTINGS_PATH}.new)`,
        `grep -q '^STATE_DIR=' ${ALERTS_SETTINGS_PATH}.new || { echo 'alerts: no settings on stdin' >&2; exit 1; }`,
        `chmod 0600 ${ALERTS_SETTINGS_PATH}.new && mv -f ${ALERTS_SETTINGS_PATH}.new ${ALERTS_SETTINGS_PATH}`,
        heredoc(`${ALERTS_CRON_PATH}.new`, ALERTS_CRON, "PLATFORM_ALERTS_CRON"),
        `chmod 0644 ${ALERTS_CRON_PATH}.new && mv -f ${ALERTS_CRON_PATH}.new ${ALERTS_CRON_PATH}`,
        "",
    ].join("\n");
}

export const ALERTS_CRON = `*/5 * * * * root sh ${ALERTS_SCRIPT_PATH} ${ALERTS_SETTINGS_PATH} 2>&1 | logger -t platform-alerts\n`;

/** An IP literal and a TCP port, as sshd's PermitOpen takes them (`[v6]:port` for IPv6). */
function permitOpenTarget(value: string): string {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value);
    const host = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (m === null || host === undefined || net.isIP(host) === 0 || (m[1] !== undefined) !== (net.isIP(host) === 6) || port < 1 || port > 65535) {
        throw new Error(`permitOpen ${JSON.stringify(value)} is not "<IP>:<port>" (e.g. 127.0.0.1:5432)`);
    }
    return value;
}

/** A CIDR fit for fail2ban's ignoreip: validated, and made of address characters only. */
function ignoreCidr(value: string): string {
    if (typeof value !== "string" || !/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(value) || !isCidr(value)) {
        throw new Error(`adminCidrs entry ${JSON.stringify(value)} is not a CIDR`);
    }
    return value;
}

/** The public key as one normalized line, or an error: a whole key of a known type, nothing that can end a line. */
function publicKeyLine(value: string): string {
    // Any control character (a newline could smuggle a second key or YAML) is refused outright.
    if (typeof value !== "string" || /[\u0000-\u001f\u007f]/.test(value.trim()) || !isSshPublicKey(value)) {
        throw new Error("sshPublicKey is not one whole OpenSSH public key (type, base64 key, optional comment) on one line");
    }
    return value.trim().split(/\s+/).join(" ");
}

/**
 * sshd settings for every mode. Each one, and why:
 * - key only: no password, no keyboard-interactive (PAM prompts), no host-based or GSSAPI, and
 *   AuthenticationMethods publickey so no other method can ever complete a login;
 * - root (the deploy user) by key only; empty passwords never;
 * - MaxAuthTries 3, LoginGraceTime 20: a client gets three offers and 20 s to authenticate;
 * - forwarding: the admin channel's `ssh -L` to PostgreSQL's loopback port is the only forward the
 *   platform uses, so only local TCP forwards, only to PermitOpen; no remote forwards (PermitListen
 *   none), no agent, X11, Unix-socket (the Docker socket) or tun forwarding. Docker over SSH
 *   (`docker system dial-stdio`) and @pulumi/command are exec sessions: forwarding rules don't touch them;
 * - no user environment or rc files that could change what those sessions run.
 */
export function renderSshdHardening(args: SshHardeningArgs = {}): string {
    const targets = (args.permitOpen ?? DEFAULT_PERMIT_OPEN).map(permitOpenTarget);
    if (targets.length === 0) throw new Error("permitOpen needs at least one target (the admin channel's)");
    return [
        "# Managed by the platform (Pulumi). Read before the other drop-ins: first value wins.",
        "PubkeyAuthentication yes",
        "AuthenticationMethods publickey",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
        "GSSAPIAuthentication no",
        "PermitEmptyPasswords no",
        "PermitRootLogin prohibit-password",
        "MaxAuthTries 3",
        "LoginGraceTime 20",
        "AllowTcpForwarding local",
        `PermitOpen ${targets.join(" ")}`,
        "PermitListen none",
        "GatewayPorts no",
        "AllowAgentForwarding no",
        "AllowStreamLocalForwarding no",
        "X11Forwarding no",
        "PermitTunnel no",
        "PermitUserEnvironment no",
        "PermitUserRC no",
        "",
    ].join("\n");
}

/**
 * fail2ban's sshd jail, read from the systemd journal (Ubuntu 24.04 has no /var/log/auth.log without
 * rsyslog). Mode aggressive: against a key-only sshd a password bot never fails a password, it is
 * told "publickey only" and disconnects ("Connection closed by authenticating user root … [preauth]"),
 * which only the aggressive/ddos patterns count. The admin CIDRs are never banned.
 */
export function renderFail2banJail(args: { readonly adminCidrs?: readonly string[] } = {}): string {
    const ignore = ["127.0.0.1/8", "::1", ...(args.adminCidrs ?? []).map(ignoreCidr)];
    return [
        "# Managed by the platform (Pulumi): SSH is open to every address (platform:sshFromAnywhere).",
        "[sshd]",
        "enabled = true",
        "backend = systemd",
        // sshd logs as `sshd` (Ubuntu 24.04, OpenSSH 9.6) or `sshd-session` (OpenSSH >= 9.8).
        "journalmatch = _COMM=sshd + _COMM=sshd-session",
        "mode = aggressive",
        "port = ssh",
        "banaction = iptables-multiport",
        "maxretry = 5",
        "findtime = 10m",
        "bantime = 1h",
        "bantime.increment = true",
        "bantime.maxtime = 1d",
        `ignoreip = ${ignore.join(" ")}`,
        "",
    ].join("\n");
}

/** A here-document whose delimiter cannot occur in `content` (the content is never expanded). */
function heredoc(file: string, content: string, delimiter: string): string {
    if (content.split("\n").includes(delimiter)) throw new Error(`content contains the here-document delimiter ${delimiter}`);
    return [`cat >"${file}" <<'${delimiter}'`, content.replace(/\n$/, ""), delimiter].join("\n");
}

/**
 * Applies the same hardening to a running server (cloud-init only runs at first boot): installs the
 * sshd drop-in only if `sshd -t` accepts the result (the old one is restored otherwise), then
 * reloads sshd; installs, configures (`fail2ban-client -t` first) and starts fail2ban when SSH is
 * open to all, and stops the jail it manages when not. Idempotent; run as root.
 */
export function renderSshGuardScript(args: SshHardeningArgs = {}): string {
    const sshd = renderSshdHardening(args);
    const jail = args.sshFromAnywhere ? renderFail2banJail(args) : undefined;
    const lines = [
        "set -eu",
        "umask 022",
        `dropin='${SSHD_DROPIN_PATH}'`,
        `legacy='${LEGACY_SSHD_DROPIN_PATH}'`,
        `jail='${FAIL2BAN_JAIL_PATH}'`,
        'tmp=$(mktemp "$(dirname "$dropin")/.platform-sshd.XXXXXX")',
        'trap \'rm -f "$tmp"\' EXIT',
        heredoc("$tmp", sshd, "PLATFORM_SSHD_CONFIG"),
        'chmod 0644 "$tmp"',
        'if ! cmp -s "$tmp" "$dropin"; then',
        '    if [ -f "$dropin" ]; then cp -p "$dropin" "$tmp.previous"; fi',
        '    mv -f "$tmp" "$dropin"',
        "    if ! sshd -t; then",
        '        if [ -f "$tmp.previous" ]; then mv -f "$tmp.previous" "$dropin"; else rm -f "$dropin"; fi',
        '        echo "ssh-guard: sshd rejected the new settings; the previous ones are back in place" >&2',
        "        exit 1",
        "    fi",
        '    rm -f "$tmp.previous"',
        '    rm -f "$legacy"',
        "    systemctl try-reload-or-restart ssh",
        "    echo 'ssh-guard: sshd settings updated'",
        "fi",
    ];
    if (jail !== undefined) {
        lines.push(
            "if ! command -v fail2ban-client >/dev/null 2>&1; then",
            "    for i in 1 2 3 4 5 6 7 8 9 10; do",
            "        if apt-get -o DPkg::Lock::Timeout=120 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq fail2ban python3-systemd; then break; fi",
            '        echo "ssh-guard: apt-get failed (attempt $i), retrying" >&2',
            "        sleep 15",
            "    done",
            "    command -v fail2ban-client >/dev/null 2>&1 || { echo 'ssh-guard: could not install fail2ban' >&2; exit 1; }",
            "fi",
            'jailtmp=$(mktemp "$(dirname "$jail")/.platform-jail.XXXXXX")',
            'trap \'rm -f "$tmp" "$jailtmp"\' EXIT',
            heredoc("$jailtmp", jail, "PLATFORM_FAIL2BAN_JAIL"),
            'chmod 0644 "$jailtmp"',
            'mv -f "$jailtmp" "$jail"',
            "if ! fail2ban-client -t >/dev/null; then",
            '    rm -f "$jail"',
            "    fail2ban-client -t >&2 || true",
            '    echo "ssh-guard: fail2ban rejected the jail" >&2',
            "    exit 1",
            "fi",
            "systemctl enable fail2ban >/dev/null 2>&1",
            "systemctl restart fail2ban",
            "echo 'ssh-guard: fail2ban sshd jail active'",
        );
    } else {
        lines.push(
            'if [ -f "$jail" ]; then',
            '    rm -f "$jail"',
            "    systemctl disable --now fail2ban >/dev/null 2>&1 || true",
            "    echo 'ssh-guard: fail2ban sshd jail removed (SSH is limited to adminCidrs)'",
            "fi",
        );
    }
    return lines.join("\n") + "\n";
}

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

function writeFile(path: string, content: string, permissions = "0644"): string[] {
    if (/[\t\r]/.test(content)) throw new Error(`${path}: a tab or carriage return cannot go into the YAML block`);
    return [`  - path: ${path}`, `    permissions: '${permissions}'`, "    content: |", block(content, 6)];
}

/**
 * Ubuntu's own docker.io package rather than Docker's apt repository: one less signing key to trust,
 * and it receives security fixes through the same unattended-upgrades as the rest of the system.
 */
export function renderCloudInit(args: CloudInitArgs): string {
    const key = publicKeyLine(args.sshPublicKey);
    const fail2ban = args.sshFromAnywhere === true;
    return [
        "#cloud-config",
        "package_update: true",
        "package_upgrade: true",
        "packages:",
        "  - docker.io",
        "  - unattended-upgrades",
        "  - ca-certificates",
        "  - openssl",
        // The alerts checker reads the Docker API with nc -U and probes the edge with wget.
        ...(args.alertsScript !== undefined ? ["  - netcat-openbsd", "  - wget"] : []),
        ...(fail2ban ? ["  - fail2ban", "  - python3-systemd"] : []),
        "ssh_pwauth: false",
        "disable_root: false",
        "users:",
        "  - name: root",
        "    ssh_authorized_keys:",
        // A JSON string is a YAML double-quoted scalar: nothing in the key can end it.
        `      - ${JSON.stringify(key)}`,
        "write_files:",
        ...writeFile(SSHD_DROPIN_PATH, renderSshdHardening(args)),
        ...(fail2ban ? writeFile(FAIL2BAN_JAIL_PATH, renderFail2banJail(args)) : []),
        ...writeFile("/etc/apt/apt.conf.d/20auto-upgrades", AUTO_UPGRADES),
        ...writeFile("/etc/docker/daemon.json", DOCKER_DAEMON),
        ...writeFile("/etc/cron.d/platform-image-prune", IMAGE_PRUNE_CRON),
        ...(args.alertsScript !== undefined
            ? [...writeFile(ALERTS_SCRIPT_PATH, args.alertsScript, "0755"), ...writeFile(ALERTS_SETTINGS_PATH, renderAlertsSettings(), "0600"), ...writeFile(ALERTS_CRON_PATH, ALERTS_CRON)]
            : []),
        "runcmd:",
        `  - [mkdir, -p, ${Object.values(HOST_DIRS).join(", ")}]`,
        "  - [systemctl, enable, --now, docker]",
        "  - [systemctl, restart, docker]",
        // Ubuntu 24.04 starts sshd on demand (ssh.socket): reload it only if it is running.
        "  - [sh, -c, 'sshd -t && systemctl try-reload-or-restart ssh']",
        ...(fail2ban ? ["  - [systemctl, enable, fail2ban]", "  - [systemctl, restart, fail2ban]"] : []),
        "  - [systemctl, enable, --now, unattended-upgrades]",
        "",
    ].join("\n");
}
