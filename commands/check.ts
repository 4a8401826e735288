// npm run check -- --stack <name>
//
// The stack's config checked the way `pulumi preview`/`up` would check it, with no cloud account and no
// Pulumi CLI: Pulumi.yaml's defaults under Pulumi.<stack>.yaml's values (what the CLI hands the program),
// the program's validation (the same schema, the same messages: printed as `error: …`, exit 1), then a
// dry evaluation of the whole program under the SDK's mocks (commands/programGraph.ts), and `ok` with
// what the stack would create, counted by resource type.
//
// Secrets (`secure:` values) cannot be decrypted without the CLI and its passphrase: they count as set
// and as secrets, with a placeholder value. A key set in plain text that must be a secret is refused,
// as the program refuses it.
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { catalog } from "../apps";
import { ConfigError, SECRET_PLACEHOLDERS, parseStackConfig, placeholderSecrets } from "../config/platformConfig";
import { isTestStackEnvironment } from "../config/testValues";
import { programResources } from "./programGraph";

export const USAGE = [
    "usage: npm run check -- --stack <name>",
    "",
    "Validates Pulumi.<name>.yaml as `pulumi up` would (Pulumi.yaml's defaults, then the stack's values) and",
    "evaluates the program under Pulumi's mocks: no cloud account, no Pulumi CLI, nothing is created.",
    "Prints the program's own errors (exit 1), or `ok` and the resources the stack would create (exit 0).",
].join("\n");


/** What the CLI hands the program: every declared default, overridden by the stack file; and which keys are secrets. */
export function runtimeConfig(projectYaml: string, stackYaml: string): { config: Record<string, string>; secrets: Set<string> } {
    const asText = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
    const project = yaml.load(projectYaml) as { config?: Record<string, { default?: unknown } | unknown> };
    const config: Record<string, string> = {};
    for (const [key, declaration] of Object.entries(project.config ?? {})) {
        if (typeof declaration === "object" && declaration !== null && "default" in declaration) config[key] = asText((declaration as { default: unknown }).default);
    }
    const secrets = new Set<string>();
    const stack = (yaml.load(stackYaml) ?? {}) as { config?: Record<string, unknown> };
    for (const [key, value] of Object.entries(stack.config ?? {})) {
        if (typeof value === "object" && value !== null && "secure" in value) {
            secrets.add(key);
            config[key] = SECRET_PLACEHOLDERS[key.slice(key.indexOf(":") + 1)] ?? "placeholder";
        } else config[key] = asText(value);
    }
    return { config, secrets };
}

export interface CheckResult {
    readonly ok: boolean;
    readonly output: string;
}

/** Validates and dry-evaluates `stack` in the project at `root`. */
export async function check(root: string, stack: string): Promise<CheckResult> {
    const projectFile = path.join(root, "Pulumi.yaml");
    const stackFile = path.join(root, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) {
        const stacks = fs.readdirSync(root).flatMap((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1] ?? []);
        return { ok: false, output: `error: no ${path.basename(stackFile)} here. Stacks with a file: ${stacks.join(", ") || "none"}. Fix: npm run check -- --stack <one of them>` };
    }
    const projectYaml = fs.readFileSync(projectFile, "utf8");
    const { config, secrets } = runtimeConfig(projectYaml, fs.readFileSync(stackFile, "utf8"));
    try {
        parseStackConfig(config, { catalog, isSecret: (key) => secrets.has(`platform:${key}`), testStack: isTestStackEnvironment(process.env), unreadableSecrets: placeholderSecrets(config) });
    } catch (e) {
        if (e instanceof ConfigError) return { ok: false, output: `error: ${e.message}` };
        throw e;
    }
    const project = (yaml.load(projectYaml) as { name: string }).name;
    let resources;
    try {
        resources = await programResources(stack, project, config);
    } catch (e) {
        return { ok: false, output: `error: ${e instanceof Error ? e.message : String(e)}` };
    }
    const byType = new Map<string, number>();
    for (const r of resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
    const rows = [...byType].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const width = String(rows[0]?.[1] ?? 0).length;
    const custom = resources.filter((r) => r.custom).length;
    return {
        ok: true,
        output: [
            `ok: stack ${stack} is valid; a first \`pulumi up\` would create ${resources.length} resources (${custom} custom resources, ${resources.length - custom} components):`,
            ...rows.map(([type, n]) => `  ${String(n).padStart(width)} ${type}`),
        ].join("\n"),
    };
}

async function main(argv: readonly string[]): Promise<number> {
    if (argv.includes("--help") || argv.includes("-h")) {
        console.log(USAGE);
        return 0;
    }
    const i = argv.indexOf("--stack");
    const stack = i >= 0 ? argv[i + 1] : undefined;
    const unknown = argv.filter((a, j) => a.startsWith("-") && a !== "--stack" && (i < 0 || j !== i + 1));
    if (stack === undefined || stack.startsWith("-") || !/^[A-Za-z0-9._-]+$/.test(stack) || unknown.length > 0 || argv.length !== 2) {
        console.error(`${unknown.length ? `unknown argument ${unknown[0]}\n` : ""}${USAGE}`);
        return 2;
    }
    const result = await check(path.join(__dirname, ".."), stack);
    (result.ok ? console.log : console.error)(result.output);
    return result.ok ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (e) => {
            console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
            process.exit(1);
        },
    );
}
