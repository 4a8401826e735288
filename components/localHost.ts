import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { Host, HostCommandArgs, toArray } from "./host";

export interface LocalHostArgs {
    /** Directory on this machine that stands in for the server's /srv/platform. */
    readonly stateDir: string;
    /** Credentials for private registries, passed to the Docker provider. */
    readonly registryAuth?: docker.types.input.ProviderRegistryAuth[];
}

/** The machine running Pulumi, with its own Docker engine: the `local` stack's host. */
export class LocalHost extends pulumi.ComponentResource implements Host {
    public readonly kind = "local" as const;
    public readonly docker: docker.Provider;
    public readonly publicAddress: pulumi.Output<string>;
    public readonly paths;
    public readonly checkDocker: command.local.Command;
    public readonly ready: pulumi.Resource[];

    constructor(name: string, args: LocalHostArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:host:LocalHost", name, {}, opts);
        const root = path.resolve(args.stateDir);
        this.paths = {
            nginx: path.join(root, "nginx"),
            certs: path.join(root, "certs"),
            acme: path.join(root, "acme"),
            letsencrypt: path.join(root, "letsencrypt"),
        };
        this.checkDocker = new command.local.Command(
            `${name}-check-docker`,
            {
                // The directories are made by ReverseProxy's prepare command, on either host.
                create: `docker info --format '{{.ServerVersion}}' || { echo 'Docker is not running: start Docker Desktop or the docker service' >&2; exit 1; }`,
                interpreter: ["/bin/sh", "-c"],
            },
            { parent: this },
        );
        this.docker = new docker.Provider(`${name}-docker`, { registryAuth: args.registryAuth }, { parent: this, dependsOn: [this.checkDocker] });
        this.publicAddress = pulumi.output("127.0.0.1");
        this.ready = [this.checkDocker];
        this.registerOutputs({ publicAddress: this.publicAddress });
    }

    runCommand(name: string, args: HostCommandArgs, opts: pulumi.CustomResourceOptions): command.local.Command {
        return new command.local.Command(
            name,
            { create: args.create, update: args.update, delete: args.delete, stdin: args.stdin, triggers: args.triggers, interpreter: ["/bin/sh", "-c"] },
            { ...opts, dependsOn: [...this.ready, ...toArray(opts.dependsOn)] },
        );
    }
}
