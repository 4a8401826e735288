import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

/** A shell command run as root on the host, once at create and again whenever its inputs change. */
export interface HostCommandArgs {
    readonly create: pulumi.Input<string>;
    /** Runs instead of a replace when inputs change; without it the command is replaced (see NOTES). */
    readonly update?: pulumi.Input<string>;
    readonly delete?: pulumi.Input<string>;
    readonly stdin?: pulumi.Input<string>;
    readonly triggers?: pulumi.Input<unknown[]>;
}

/** Paths on the host that containers mount. */
export interface HostPaths {
    /** Rendered nginx.conf and its candidate/previous copies. */
    readonly nginx: string;
    /** TLS certificate and key the edge serves. */
    readonly certs: string;
    /** ACME HTTP-01 webroot. */
    readonly acme: string;
    /** Let's Encrypt account and certificates. */
    readonly letsencrypt: string;
}

/**
 * What the components above the host need from it. ScalewayHost and LocalHost both provide it, so
 * nothing above knows which one it got.
 */
export interface Host {
    /** Docker provider for this host's engine. */
    readonly docker: docker.Provider;
    /** Address clients reach the edge at (the flexible IP, or 127.0.0.1). */
    readonly publicAddress: pulumi.Output<string>;
    readonly paths: HostPaths;
    /** Resources that must exist before anything uses the host (cloud-init and Docker ready). */
    readonly ready: pulumi.Resource[];
    /** Whether the edge publishes 80/443 to the world (cloud) or one port on loopback (local). */
    readonly kind: "scaleway" | "local";
    runCommand(name: string, args: HostCommandArgs, opts: pulumi.CustomResourceOptions): command.remote.Command | command.local.Command;
}

/** A dependsOn option as a list, so a host can add its readiness to whatever the caller gave. */
export function toArray<T>(value: pulumi.Input<pulumi.Input<T>[]> | pulumi.Input<T> | undefined): pulumi.Input<T>[] {
    if (value === undefined) return [];
    return Array.isArray(value) ? value : [value as pulumi.Input<T>];
}
