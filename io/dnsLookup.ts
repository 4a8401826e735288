// What DNS answers for a name now, for the program's checks (the load balancer's certificate waits for it).
import { Resolver } from "dns/promises";

/** The domain's IPv4 addresses as the system's resolver answers now; [] when it does not resolve, or DNS fails or times out. */
export async function resolveIpv4(domain: string): Promise<string[]> {
    // Bounded: a preview on a machine without DNS must not hang on it.
    const resolver = new Resolver({ timeout: 3000, tries: 2 });
    try {
        return await resolver.resolve4(domain);
    } catch {
        return [];
    }
}
