// The configuration reference cannot drift: the schema (config/platformConfig.ts CONFIG_SCHEMA) is the single
// source, and Pulumi.yaml's declarations, the README's table and the documented examples are checked against it.
import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { CERTIFICATE_SCRIPT } from "../components/reverseProxy";
import { catalog } from "../apps";
import { CONFIG_KEYS, CONFIG_SCHEMA, ConfigError, INSTANCE_MEMORY_MB, SECRET_KEYS, parsePlatformConfig, planMemory } from "../config/platformConfig";
import { PRICES_DATE, costTable } from "../render/scale";
import { PLACEHOLDER_DB_CERTIFICATE } from "../commands/programGraph";
import { databaseUrl, managedAppEndpoint, managedClientEnv, managedServerTls } from "../render/postgres";
import { BACKUP_ADMINISTRATOR, BACKUP_RECIPIENT, PROD_RAW, PUBLIC_KEY, parse } from "./fixtures";

const root = path.join(__dirname, "..");
interface Declaration {
    type?: string;
    items?: { type: string };
    default?: unknown;
    description?: string;
}
const project = yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { name: string; config: Record<string, Declaration> };
const declared = Object.fromEntries(Object.entries(project.config).map(([k, v]) => [k.replace(/^platform:/, ""), v]));

function readmeRows(): Record<string, { type: string; default: string; description: string }> {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const section = readme.split("## Configuration reference")[1].split("\n## ")[0];
    const rows: Record<string, { type: string; default: string; description: string }> = {};
    for (const line of section.split("\n")) {
        const m = /^\| `([A-Za-z]+)` \| (\w+) \| `(.*)` \| (.*) \|$/.exec(line);
        if (m) rows[m[1]] = { type: m[2], default: m[3], description: m[4] };
    }
    return rows;
}

/** A default as the README's table writes it: `""`, `local`, `false`, `[]`, `{}`. */
const shownDefault = (d: unknown) => (typeof d === "string" ? (d === "" ? '""' : d) : JSON.stringify(d));

describe("configuration reference", () => {
    it("Pulumi.yaml declares exactly the schema's keys, in its order, each with its default and description, untyped", () => {
        assert.strictEqual(project.name, "platform");
        assert.deepStrictEqual(Object.keys(declared), [...CONFIG_KEYS]);
        for (const key of CONFIG_KEYS) {
            const spec = CONFIG_SCHEMA[key];
            const d = declared[key];
            // Untyped on purpose: a declared type is checked by the CLI before the program runs, and its message
            // ("must be of type 'integer'", first mismatch only) would pre-empt the schema's (tests/pulumiCli.real.test.ts).
            assert.strictEqual(d.type, undefined, `platform:${key}: no type: in Pulumi.yaml, so the program's message wins`);
            assert.strictEqual(d.items, undefined, `platform:${key}: no items:`);
            assert.ok("default" in d, `platform:${key} needs a default, or stacks without it fail before validation can explain`);
            assert.deepStrictEqual(d.default, spec.default, `platform:${key}: default`);
            assert.strictEqual(d.description, spec.description, `platform:${key}: Pulumi.yaml's description is the schema's, word for word`);
            assert.ok(spec.description.length > 20, `${key} needs a description`);
        }
    });
    it("the README's table lists the schema's keys, in its order, with their types and defaults, and says which are secrets", () => {
        const rows = readmeRows();
        assert.deepStrictEqual(Object.keys(rows), [...CONFIG_KEYS]);
        for (const key of CONFIG_KEYS) {
            const spec = CONFIG_SCHEMA[key];
            assert.strictEqual(rows[key].type, spec.type, `${key}: type`);
            assert.strictEqual(rows[key].default, shownDefault(spec.default), `${key}: default`);
            assert.strictEqual(rows[key].description.includes("`--secret`"), SECRET_KEYS.has(key), `${key}: the README says --secret exactly for the secret keys`);
        }
        // And the Pulumi.yaml the CLI reads agrees with the README, so either can be trusted.
        for (const [key, d] of Object.entries(declared)) assert.strictEqual(rows[key].default, shownDefault(d.default), `${key}: default`);
    });
    it("the documented examples, every key's together, are a valid stack (a test stack: the examples are published values)", () => {
        const options = { catalog, isSecret: (k: string) => SECRET_KEYS.has(k), testStack: true };
        const all = Object.fromEntries(CONFIG_KEYS.map((k) => [k, CONFIG_SCHEMA[k].example]));
        const config = parsePlatformConfig(all, options);
        assert.strictEqual(config.target, "scaleway");
        assert.deepStrictEqual(config.scale, { database: "managed", hosts: 2, managedDatabaseNodeType: "DB-GP-XS", managedDatabaseHa: true, managedDatabaseBackupDays: 14 });
        assert.strictEqual(config.backup.publicKey, CONFIG_SCHEMA.backupPublicKey.example);
        // The examples are what validation checks against: a wrong value of each key's type is refused at that key.
        for (const [key, bad] of [["acmeStaging", "yes"], ["hosts", "two"], ["adminCidrs", "203.0.113.10/32"], ["apps", '["demo"]'], ["backupSchedule", "@daily"]] as const) {
            assert.throws(() => parsePlatformConfig({ ...all, [key]: bad }, options), (e: ConfigError) => e.problems.some((p) => p.startsWith(`platform:${key}: `) && /Fix: /.test(p)), key);
        }
    });
    it("the published example keys are refused on a stack that is not a test stack", () => {
        const all = Object.fromEntries(CONFIG_KEYS.map((k) => [k, CONFIG_SCHEMA[k].example]));
        assert.throws(
            () => parsePlatformConfig(all, { catalog, isSecret: (k) => SECRET_KEYS.has(k) }),
            (e: ConfigError) =>
                ["sshPublicKey", "backupPublicKey", "adminCidrs[0]"].every((k) => e.problems.some((p) => p.startsWith(`platform:${k}: `) && /Fix: /.test(p))),
        );
    });
    it("every stack file sets only declared keys in the platform namespace", () => {
        for (const file of fs.readdirSync(root).filter((f) => /^Pulumi\.[a-z]+\.yaml$/.test(f))) {
            const stack = yaml.load(fs.readFileSync(path.join(root, file), "utf8")) as { config: Record<string, unknown> };
            for (const key of Object.keys(stack.config).filter((k) => k.startsWith("platform:"))) {
                assert.ok(key.slice(9) in declared, `${file}: ${key} is not declared in Pulumi.yaml`);
            }
        }
    });
});

describe("the project file as the language host reads it", () => {
    // The nodejs language host turns each runtime option into a command-line flag: an option it does
    // not define fails every preview and up ("flag provided but not defined: -<option>").
    const NODEJS_RUNTIME_OPTIONS = ["typescript", "tsconfig", "nodeargs", "packagemanager"];
    const runtime = (yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { runtime: { name: string; options: Record<string, unknown> } }).runtime;
    it("uses only runtime options the nodejs language host defines", () => {
        assert.strictEqual(runtime.name, "nodejs");
        for (const option of Object.keys(runtime.options)) assert.ok(NODEJS_RUNTIME_OPTIONS.includes(option), `runtime.options.${option} is not a nodejs language host option`);
    });
    it("runs the program precompiled: typescript false, main a committed JavaScript entry that loads the build (dist/, never committed)", () => {
        const main = (yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { main: string }).main;
        assert.strictEqual(runtime.options.typescript, false, "no ts-node at run time");
        assert.strictEqual(runtime.options.tsconfig, undefined, "a tsconfig only matters to ts-node");
        assert.match(main, /\.js$/);
        const entry = fs.readFileSync(path.join(root, main), "utf8");
        assert.match(entry, /require\("\.\.\/dist\/index\.js"\)/);
        assert.match(entry, /Error\.prepareStackTrace = undefined/, "V8's native stack formatting");
        assert.match(fs.readFileSync(path.join(root, ".gitignore"), "utf8"), /^dist\/$/m);
        const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));
        assert.match(pkg.scripts.postinstall, /launch\/build\.js/, "npm ci builds dist/");
        assert.match(pkg.scripts.test, /^tsc --noEmit(?: -p \.)? && /, "the type check stays in npm test");
    });
});

describe("the committed stack files", () => {
    const rawOf = (file: string): Record<string, string> => {
        const stack = yaml.load(fs.readFileSync(path.join(root, file), "utf8")) as { config: Record<string, unknown> };
        return Object.fromEntries(
            Object.entries(stack.config)
                .filter(([k]) => k.startsWith("platform:"))
                .map(([k, v]) => [k.slice(9), typeof v === "string" ? v : JSON.stringify(v)]),
        );
    };
    it("Pulumi.local.yaml is valid and runs the demo app only", () => {
        const config = parse(rawOf("Pulumi.local.yaml"));
        assert.deepStrictEqual(config.apps.map((a) => a.definition.name), ["demo"]);
    });
    it("Pulumi.prod.yaml's placeholders are refused, each naming its key and how to make the real value", () => {
        const raw = rawOf("Pulumi.prod.yaml");
        let problems: readonly string[] = [];
        try {
            // As `pulumi up` reads it on a real stack: not a test stack.
            parsePlatformConfig(raw, { catalog, isSecret: (k) => SECRET_KEYS.has(k) });
            assert.fail("the committed example must not validate");
        } catch (e) {
            assert.ok(e instanceof ConfigError, String(e));
            problems = e.problems;
        }
        const expected: Record<string, RegExp> = {
            "platform:sshPublicKey": /placeholder.*ssh-keygen -t ed25519.*pulumi config set platform:sshPublicKey "\$\(cat ~\/\.ssh\/id_ed25519\.pub\)"/,
            "platform:adminCidrs[0]": /placeholder.*Fix: pulumi config set --path 'adminCidrs\[0\]' "\$\(curl -4 -fsS https:\/\/ifconfig\.me\)\/32"/,
            "platform:backupPublicKey": /placeholder.*Fix: age-keygen -o backup\.key.*pulumi config set platform:backupPublicKey age1/,
            "platform:backupSigningKey": /required on the scaleway target.*Fix: npm run backup:signing-key -- --stack <stack>/,
            "platform:backupAdministrators[0]": /placeholder.*Fix: scw iam api-key get "\$SCW_ACCESS_KEY".*pulumi config set --path 'platform:backupAdministrators\[0\]' user_id:<uuid>/,
        };
        assert.deepStrictEqual(problems.map((p) => p.slice(0, p.indexOf(": "))).sort(), Object.keys(expected).sort(), problems.join("\n"));
        for (const [key, text] of Object.entries(expected)) assert.match(problems.find((p) => p.startsWith(`${key}: `))!, text);
    });
    it("Pulumi.prod.yaml is valid once its placeholders are replaced; it runs the demo app (public images), so the first deployment needs no registry token; a private app then asks for one", () => {
        const raw = rawOf("Pulumi.prod.yaml");
        assert.strictEqual(raw.registryToken, undefined);
        // The fixtures' values stand in for the operator's own: accepted on a test stack only (see the next test).
        const replaced = {
            ...raw,
            sshPublicKey: PUBLIC_KEY,
            adminCidrs: JSON.stringify(["203.0.113.10/32"]),
            backupPublicKey: BACKUP_RECIPIENT,
            backupSigningKey: PROD_RAW.backupSigningKey,
            backupSigningKeys: PROD_RAW.backupSigningKeys,
            backupAdministrators: JSON.stringify([BACKUP_ADMINISTRATOR]),
        };
        const config = parse(replaced);
        assert.deepStrictEqual(config.apps.map((a) => a.definition.name), ["demo"]);
        assert.ok(config.apps.every((a) => !a.definition.frontend.privateImage && !a.definition.backend.privateImage));
        assert.throws(() => parse({ ...replaced, apps: JSON.stringify({ demo: "1.27-alpine", app1: "1.4.2" }) }), /platform:registryToken: required/);
        assert.ok(config.apps.every((a) => typeof a.release === "string"));
        assert.strictEqual(config.target, "scaleway");
        assert.ok(config.memory.totalMb <= config.memory.budgetMb);
    });
});

describe("the README's claims that can be checked", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8"));

    it("opens with the two commands, each doing its own set-up, and both scripts exist", () => {
        const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)![1];
        const commands = firstBlock.split("\n").filter(Boolean).map((l) => l.replace(/\s+#.*$/, "").trim());
        assert.deepStrictEqual(commands, ["npm ci && npm run local:up", "npm ci && npm test"]);
        assert.ok(readme.indexOf("```sh") < readme.indexOf("## "), "the commands come before any section");
        assert.ok(pkg.scripts["local:up"] && pkg.scripts.test);
    });
    it("every `npm run` it mentions exists in package.json", () => {
        const mentioned = new Set([...readme.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]));
        assert.ok(mentioned.size >= 3);
        for (const script of mentioned) assert.ok(pkg.scripts[script], `npm run ${script} is not a script`);
    });
    it("states the Node version package.json requires", () => {
        const major = /(\d+)/.exec(pkg.engines.node)![1];
        assert.match(readme, new RegExp(`Node\\.js ${major}`));
    });
    it("every platform: key it names exists, and every release it sets is stored as a string", () => {
        for (const [, key] of readme.matchAll(/platform:([A-Za-z]+)/g)) assert.ok((CONFIG_KEYS as readonly string[]).includes(key), `platform:${key}`);
        const sets = [...readme.matchAll(/pulumi config set[^`\n]*--path '(?:platform:)?apps\.[^`\n]*/g)].map((m) => m[0]);
        assert.ok(sets.length >= 3);
        for (const set of sets) assert.match(set, /--type string/, set);
    });
    it("commands run over ssh quote their $(…) so it runs on the server, not the laptop", () => {
        for (const line of readme.split("\n").filter((l) => /ssh root@/.test(l) && l.includes("$("))) {
            const command = line.slice(line.indexOf("ssh root@"));
            const quoted = /ssh root@\S+ '([^']*)'/.exec(command);
            assert.ok(quoted && quoted[1].includes("$("), `unquoted $(…) after ssh: ${line}`);
        }
    });
    it("the memory figures it gives are the memory plan's", () => {
        const plan = planMemory(INSTANCE_MEMORY_MB["DEV1-M"], Object.values(catalog));
        const figure = (n: number) => n.toLocaleString("en-US");
        assert.ok(readme.includes(`On DEV1-M that is ${figure(plan.budgetMb)} MiB`), `budget ${plan.budgetMb}`);
        assert.ok(readme.includes(`the forwarder and the edge use ${figure(plan.totalMb)}`), `total ${plan.totalMb}`);
    });
    it("the cost table is the cost model's, with the date of its prices", () => {
        const table = costTable([
            { name: "1 host + container DB (today)", shape: { hosts: 1, database: "container" } },
            { name: "2 hosts + managed DB-DEV-S + LB-S", shape: { hosts: 2, database: "managed" } },
            { name: "2 hosts + managed DB-DEV-S HA + LB-S", shape: { hosts: 2, database: "managed", managedDatabaseHa: true } },
        ]);
        assert.ok(readme.includes(table), "regenerate the README's cost table from render/scale.ts costTable()");
        assert.match(table, new RegExp(PRICES_DATE));
    });
    it("the certificate command it gives is the script and settings file the edge installs", () => {
        const script = fs.readFileSync(path.join(root, "hostScripts", "issue-certificate.sh"), "utf8");
        const settings = /settings_file=\$\{SETTINGS_FILE:-([^}]+)\}/.exec(script)![1];
        assert.ok(readme.includes(`sh ${CERTIFICATE_SCRIPT} --renew-only ${settings}`), `expected: sh ${CERTIFICATE_SCRIPT} --renew-only ${settings}`);
    });
});

describe("README: the managed database's clients", () => {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const section = readme.split("**How the managed database's clients check the server.**")[1]?.split("\n- **Several hosts**")[0] ?? "";

    it("states the apps' DATABASE_URL parameters the renderer gives", () => {
        const e = managedAppEndpoint("172.16.32.9", 5432);
        const query = databaseUrl("r", "p", e.host, e.port, "d", e.sslmode, e.channelBinding).split("?")[1];
        assert.ok(section.includes(`?${query}\``), `README gives ?${query}`);
    });

    it("names the client container's libpq settings the renderer gives", () => {
        const env = managedClientEnv({ ip: "172.16.32.9", port: 5432 }, managedServerTls(PLACEHOLDER_DB_CERTIFICATE, "172.16.32.9"), "platform_admin");
        for (const e of env.filter((v) => /^PG(SSLMODE|CHANNELBINDING)=/.test(v))) assert.ok(section.includes(e), `README names ${e}`);
        assert.ok(env.some((v) => v.startsWith("PGSSLROOTCERT=")) && section.includes("`PGSSLROOTCERT`"));
    });
});
