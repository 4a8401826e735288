// Reads the `platform:*` namespace from the Pulumi runtime and hands it to the pure parser.
import * as pulumi from "@pulumi/pulumi";
import { catalog } from "../apps";
import { PlatformConfig, parsePlatformConfig } from "./config";

// Exported by the SDK's runtime but missing from its type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

export function readPlatformConfig(): PlatformConfig {
    const raw: Record<string, string> = {};
    for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
        if (key.startsWith("platform:")) raw[key.slice("platform:".length)] = value;
    }
    return parsePlatformConfig(raw, { catalog, isSecret: (key) => runtimeConfig.isConfigSecret(`platform:${key}`) });
}
