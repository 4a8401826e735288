// Reads the platform's stack outputs from another Pulumi project. Type-checked by `npm test` (tsc)
// and run against the platform's real outputs by tests/consumer.test.ts.
//
//   const platform = new pulumi.StackReference("acme/platform/prod");
//
// Output shape (see README "Stack outputs"):
//   publicIp: string                    baseUrl: string
//   apps: { [app]: { url, apiUrl, release, database?, role? } }
//   databaseUrls: secret { [app]: "postgres://role:password@postgres:5432/db?sslmode=disable" }
import * as pulumi from "@pulumi/pulumi";

export interface PlatformApp {
    url: string;
    apiUrl: string;
    release: string;
    database?: string;
    role?: string;
}

export function readPlatform(stackName: string, app: string) {
    const platform = new pulumi.StackReference(stackName);
    const apps = platform.requireOutput("apps") as pulumi.Output<Record<string, PlatformApp>>;
    const appUrl = apps.apply((all) => {
        const entry = all[app];
        if (entry === undefined) throw new Error(`${stackName} does not run ${app}; it runs ${Object.keys(all).join(", ")}`);
        return entry.url;
    });
    // getOutput keeps the secret flag: the URL stays encrypted in this project's state too.
    const databaseUrl = (platform.requireOutput("databaseUrls") as pulumi.Output<Record<string, string>>).apply((urls) => urls[app]);
    return { appUrl, databaseUrl: pulumi.secret(databaseUrl) };
}
