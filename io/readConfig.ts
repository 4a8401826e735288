// Reads the `platform:*` namespace from the Pulumi runtime and hands it to the pure parser.
import * as pulumi from "@pulumi/pulumi";
import { catalog } from "../apps";
import { ConfigError, PlatformConfig, parseStackConfig } from "../config/platformConfig";
import { isTestStackEnvironment } from "../config/testValues";
import { markActionable } from "./runErrors";

// Exported by the SDK's runtime but missing from its type declarations.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret(key: string): boolean };

export function readPlatformConfig(): PlatformConfig {
    try {
        return parseStackConfig(pulumi.runtime.allConfig(), {
            catalog,
            isSecret: (key) => runtimeConfig.isConfigSecret(`platform:${key}`),
            testStack: isTestStackEnvironment(process.env),
        });
    } catch (e) {
        // Its message lists every bad key with its fix: reported alone, without a stack (io/runErrors.ts).
        throw e instanceof ConfigError ? markActionable(e) : e;
    }
}
