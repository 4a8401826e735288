import * as pulumi from "@pulumi/pulumi";
import * as scaleway from "@pulumiverse/scaleway";
import { PRIVATE_SUBNET, stripPrefixLength } from "../render/scale";

export interface PlatformNetworkArgs {
    /** IPv4 subnet; fixed, so the hosts' and the load balancer's addresses stay where they are. */
    readonly subnet?: string;
}

/**
 * The private network every host, the load balancer and the managed database sit on. Nothing on it is
 * reachable from the internet: the managed database has no public endpoint, the hosts' edges take
 * requests from the load balancer here while their security groups drop 80/443 from outside.
 */
export class PlatformNetwork extends pulumi.ComponentResource {
    public readonly privateNetwork: scaleway.network.PrivateNetwork;
    public readonly subnet: string;

    constructor(name: string, args: PlatformNetworkArgs = {}, opts?: pulumi.ComponentResourceOptions) {
        super("platform:network:PlatformNetwork", name, {}, opts);
        this.subnet = args.subnet ?? PRIVATE_SUBNET;
        this.privateNetwork = new scaleway.network.PrivateNetwork(
            `${name}-pn`,
            { name: "platform", ipv4Subnet: { subnet: this.subnet }, tags: ["platform"] },
            { parent: this },
        );
        this.registerOutputs({ privateNetworkId: this.privateNetwork.id, subnet: this.subnet });
    }
}

export interface HostAttachmentArgs {
    readonly privateNetworkId: pulumi.Input<string>;
    /** The host's server (ScalewayHost.server). */
    readonly serverId: pulumi.Input<string>;
}

/**
 * One host on the private network: an address reserved in IPAM (it outlives the NIC, so the load
 * balancer's backend keeps the same server address) and the private NIC that carries it.
 */
export class HostAttachment extends pulumi.ComponentResource {
    public readonly ip: scaleway.ipam.Ip;
    public readonly nic: scaleway.instance.PrivateNic;
    /** The host's private IPv4 address, without prefix length. */
    public readonly address: pulumi.Output<string>;

    constructor(name: string, args: HostAttachmentArgs, opts?: pulumi.ComponentResourceOptions) {
        super("platform:network:HostAttachment", name, {}, opts);
        this.ip = new scaleway.ipam.Ip(`${name}-ip`, { sources: [{ privateNetworkId: args.privateNetworkId }], tags: ["platform"] }, { parent: this });
        this.nic = new scaleway.instance.PrivateNic(
            `${name}-nic`,
            { serverId: args.serverId, privateNetworkId: args.privateNetworkId, ipamIpIds: [this.ip.id], tags: ["platform"] },
            { parent: this },
        );
        this.address = pulumi.all([this.ip.address, this.nic.id]).apply(([address]) => stripPrefixLength(address));
        this.registerOutputs({ address: this.address });
    }
}
