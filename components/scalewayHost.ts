import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as scaleway from "@pulumiverse/scaleway";
import { readHostScript } from "../hostScripts";
import { ALERTS_CRON_PATH, DEFAULT_PERMIT_OPEN, HOST_DIRS, renderAlertsInstallScript, renderAlertsSettings, renderCloudInit, renderSshGuardScript } from "../render/cloudInit";
import { knownHostsLine, strictSshOptions, writeStackSshFiles } from "../io/sshFiles";
import { Host, HostCommandArgs, toArray } from "./host";

export interface ScalewayHostArgs {
    /** Scaleway commercial type, e.g. `DEV1-M`. */
    readonly instanceType: string;
    /** Secret. The webhook the alerts checker posts to when the set of alerts changes (none when unset). */
    readonly alertWebhookUrl?: pulumi.Input<string>;
    /** OpenSSH public key installed for root. */
    readonly sshPublicKey: string;
    /** CIDRs allowed to reach port 22 (and never banned by fail2ban). */
    readonly adminCidrs: readonly string[];
    /**
     * Opt-in: port 22 open to every address (deploying from GitHub-hosted runners, whose addresses
     * change), with fail2ban's sshd jail on the host. sshd is key-only in every mode.
     */
    readonly sshFromAnywhere?: boolean;
    /**
     * `host:port` destinations on the server that SSH local forwards may reach (the admin channel's
     * forward to PostgreSQL); every other forward is refused. Default 127.0.0.1:5432.
     */
    readonly sshPermitOpen?: readonly string[];
    /** Credentials for private registries, passed to the Docker provider. */
    readonly registryAuth?: docker.types.input.ProviderRegistryAuth[];
    /**
     * Behind a load balancer (several hosts): false drops 80/443 from the internet; the load balancer
     * reaches the edge over the private network, which the security group does not filter. Default true.
     */
    readonly publicWeb?: boolean;
    /**
     * A host that holds no data (the second and later hosts, with the managed database): the server
     * and its IP are not protected and its root volume goes with it, so `hosts` can come down again.
     */
    readonly stateless?: boolean;
}

/** Waits for cloud-init and Docker, then prints the host's ed25519 key so every later connection can pin it. */
const WAIT_FOR_DOCKER = [
    "set -u",
    // cloud-init >= 23.4 exits 2 on recoverable errors; only 1 is a failed boot.
    "timeout 900 cloud-init status --wait >/dev/null; rc=$?",
    'if [ "$rc" -eq 1 ] || [ "$rc" -eq 124 ]; then echo "cloud-init failed (exit $rc): see /var/log/cloud-init-output.log" >&2; exit 1; fi',
    "for i in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 2; done",
    'docker info >/dev/null 2>&1 || { echo "docker is not running: systemctl status docker" >&2; exit 1; }',
    "cat /etc/ssh/ssh_host_ed25519_key.pub",
].join("\n");

/**
 * One Scaleway instance running Ubuntu 24.04 with Docker, behind a default-deny security group.
 * Host key trust: the first connection (the readiness check) trusts on first use and records the
 * host's ed25519 key in the state; every later SSH connection (commands, Docker, the database
 * channel) pins that key.
 */
export class ScalewayHost extends pulumi.ComponentResource implements Host {
    public readonly kind = "scaleway" as const;
    public readonly ip: scaleway.instance.Ip;
    public readonly securityGroup: scaleway.instance.SecurityGroup;
    public readonly sshKey: scaleway.iam.SshKey;
    public readonly server: scaleway.instance.Server;
    public readonly waitForDocker: command.remote.Command;
    /** Keeps the sshd hardening (and fail2ban when SSH is open to all) applied on the running server. */
    public readonly sshGuard: command.remote.Command;
    public readonly docker: docker.Provider;
    public readonly publicAddress: pulumi.Output<string>;
    /** The host's ed25519 public key, recorded at first contact. */
    public readonly hostKey: pulumi.Output<string>;
    /** `-o …` options for a system ssh client that pins the host key (the key itself comes from ssh-agent). */
    public readonly sshOptions: pulumi.Output<string[]>;
    public readonly paths = { nginx: HOST_DIRS.nginx, certs: HOST_DIRS.certs, acme: HOST_DIRS.acme, letsencrypt: HOST_DIRS.letsencrypt };
    public readonly ready: pulumi.Resource[];
    private readonly connection: pulumi.Output<command.types.input.remote.ConnectionArgs>;

    constructor(name: string, args: ScalewayHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:host:ScalewayHost", name, {}, opts);

        // The address is what DNS points at: it outlives any server.
        const stateless = args.stateless === true;
        this.ip = new scaleway.instance.Ip(`${name}-ip`, {}, { parent: this, protect: !stateless });

        const fromAnywhere = args.sshFromAnywhere === true;
        const hardening = { sshFromAnywhere: fromAnywhere, adminCidrs: args.adminCidrs, permitOpen: args.sshPermitOpen ?? DEFAULT_PERMIT_OPEN };
        const sshRules = fromAnywhere
            ? [{ action: "accept", protocol: "TCP", port: 22, ipRange: "0.0.0.0/0" }]
            : args.adminCidrs.map((cidr) => ({ action: "accept", protocol: "TCP", port: 22, ipRange: cidr }));
        const webRules =
            args.publicWeb === false
                ? []
                : [
                      { action: "accept", protocol: "TCP", port: 80, ipRange: "0.0.0.0/0" },
                      { action: "accept", protocol: "TCP", port: 443, ipRange: "0.0.0.0/0" },
                  ];
        this.securityGroup = new scaleway.instance.SecurityGroup(
            `${name}-firewall`,
            {
                description: args.publicWeb === false
                    ? `platform host behind the load balancer: no 80/443 from the internet (the load balancer comes over the private network), 22 from ${fromAnywhere ? "anywhere (key-only sshd, fail2ban)" : "admin CIDRs"}, nothing else`
                    : fromAnywhere
                    ? "platform edge: 80/443 from anywhere, 22 from anywhere (key-only sshd, fail2ban), nothing else"
                    : "platform edge: 80/443 from anywhere, 22 from admin CIDRs, nothing else",
                inboundDefaultPolicy: "drop",
                outboundDefaultPolicy: "accept",
                stateful: true,
                enableDefaultSecurity: true,
                inboundRules: [...webRules, ...sshRules],
            },
            { parent: this },
        );

        this.sshKey = new scaleway.iam.SshKey(`${name}-key`, { publicKey: args.sshPublicKey }, { parent: this });

        // The server holds the database volume: never replaced by a config change. cloud-init only runs
        // at first boot, so a changed template would not reach this server anyway.
        this.server = new scaleway.instance.Server(
            `${name}-server`,
            {
                type: args.instanceType,
                image: "ubuntu_noble",
                ipId: this.ip.id,
                securityGroupId: this.securityGroup.id,
                cloudInit: renderCloudInit({ sshPublicKey: args.sshPublicKey, ...hardening, alertsScript: readHostScript("check-alerts.sh") }),
                rootVolume: { sizeInGb: 40, deleteOnTermination: stateless },
                replaceOnTypeChange: false,
                tags: ["platform"],
            },
            { parent: this, protect: !stateless, ignoreChanges: ["cloudInit", "image"], dependsOn: [this.sshKey] },
        );

        this.publicAddress = this.ip.address;
        // No private key, by design: the command provider signs with the ssh-agent in SSH_AUTH_SOCK (its
        // fallback when neither privateKey nor agentSocketPath is set), so the key is in neither the
        // config nor the state, and a preview, which connects to nothing, runs without it
        // (tests/preview.credentials.real.test.ts).
        const firstContact: command.types.input.remote.ConnectionArgs = {
            host: this.ip.address,
            user: "root",
            // A fresh server refuses connections until sshd is up.
            dialErrorLimit: 60,
            perDialTimeout: 10,
        };

        this.waitForDocker = new command.remote.Command(
            `${name}-wait-for-docker`,
            { connection: firstContact, create: WAIT_FOR_DOCKER, triggers: [this.server.id] },
            { parent: this },
        );
        this.hostKey = this.waitForDocker.stdout.apply((out) => {
            const line = out.trim().split("\n").pop() ?? "";
            if (!line.startsWith("ssh-ed25519 ")) throw new Error(`expected the host's ed25519 key from the readiness check, got ${JSON.stringify(line)}`);
            return line.split(/\s+/).slice(0, 2).join(" ");
        });
        this.connection = pulumi.all([this.ip.address, this.hostKey]).apply(([host, hostKey]) => ({ ...firstContact, host, hostKey }));

        // cloud-init ran once, at first boot: this re-applies the same sshd drop-in (and fail2ban when
        // SSH is open to all) to the running server, so a server created by an older version or a
        // changed sshFromAnywhere/adminCidrs reaches it. sshd -t guards the reload; updated in place.
        const guardScript = renderSshGuardScript(hardening);
        this.sshGuard = new command.remote.Command(
            `${name}-ssh-guard`,
            { connection: this.connection, create: guardScript, update: guardScript },
            { parent: this, dependsOn: [this.waitForDocker] },
        );

        // The alerts checker, on servers created before cloud-init installed it too (same files).
        const alertsInstall = renderAlertsInstallScript(readHostScript("check-alerts.sh"));
        new command.remote.Command(
            `${name}-alerts`,
            {
                connection: this.connection,
                create: alertsInstall,
                update: alertsInstall,
                stdin: pulumi.secret(pulumi.output(args.alertWebhookUrl ?? "").apply((webhookUrl) => renderAlertsSettings({ webhookUrl }))),
                delete: `rm -f ${ALERTS_CRON_PATH}`,
            },
            // Like everything else that connects, after the guard (it may be reloading sshd).
            { parent: this, dependsOn: [this.waitForDocker, this.sshGuard] },
        );

        // The options hold file paths, not key material: unsecret, so the Docker provider's
        // settings and the admin endpoint derived from them are not needlessly masked. The paths are
        // the same on every run (and machine): see io/sshFiles.ts for where and for how long. No
        // identity file: the system ssh client the Docker provider runs signs with the agent too (and
        // an identity a former platform:sshPrivateKey left behind is removed).
        const project = pulumi.getProject();
        const stack = pulumi.getStack();
        this.sshOptions = pulumi.unsecret(
            pulumi.all([this.ip.address, this.hostKey]).apply(([address, hostKey]) => {
                // The first host keeps the stack's `known_hosts`; other hosts of a scaled stack pin theirs in files of their own.
                const knownHostsName = name === "host" ? "known_hosts" : `known_hosts-${name}`;
                const files = writeStackSshFiles({ project, stack, knownHosts: knownHostsLine(address, hostKey), knownHostsName });
                return strictSshOptions(files.knownHostsFile, files.identityFile);
            }),
        );

        this.docker = new docker.Provider(
            `${name}-docker`,
            {
                host: pulumi.interpolate`ssh://root@${this.ip.address}`,
                sshOpts: this.sshOptions,
                registryAuth: args.registryAuth,
            },
            { parent: this, dependsOn: [this.waitForDocker, this.sshGuard] },
        );
        // Nothing connects while the guard may be reloading sshd.
        this.ready = [this.waitForDocker, this.sshGuard];

        this.registerOutputs({ publicAddress: this.publicAddress, hostKey: this.hostKey, serverId: this.server.id });
    }

    runCommand(name: string, args: HostCommandArgs, opts: pulumi.CustomResourceOptions): command.remote.Command {
        return new command.remote.Command(
            name,
            { connection: this.connection, create: args.create, update: args.update, delete: args.delete, stdin: args.stdin, triggers: args.triggers },
            { ...opts, dependsOn: [...this.ready, ...toArray(opts.dependsOn)] },
        );
    }
}
