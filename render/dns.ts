// The DNS record the operator creates after the first `up`: the one thing the program cannot declare
// (the domain's zone is the operator's). Pure: the stack output `dnsRecord` is rendered from it.
import { DOMAIN } from "./values";

export interface DnsRecord {
    readonly type: "A";
    /** The fully qualified name, with its trailing dot, as zone files write it. */
    readonly name: string;
    readonly value: string;
    /** The zone-file line to create, and how to check it. */
    readonly record: string;
    readonly check: string;
}

function isIpv4(value: string): boolean {
    const parts = value.split(".");
    return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}


/** `apps.example.org. 300 IN A 51.15.200.7`: the record that makes the certificate issuable. */
export function dnsRecordFor(domain: string, ip: string): DnsRecord {
    if (!DOMAIN.test(domain)) throw new Error(`dns: ${JSON.stringify(domain)} is not a domain name`);
    if (!isIpv4(ip)) throw new Error(`dns: ${JSON.stringify(ip)} is not an IPv4 address`);
    return {
        type: "A",
        name: `${domain}.`,
        value: ip,
        record: `${domain}. 300 IN A ${ip}`,
        check: `dig +short ${domain} A   # must print ${ip}; until then the edge serves plain HTTP and the host retries Let's Encrypt every 15 minutes, then switches to HTTPS`,
    };
}
