// The configuration reference cannot drift: Pulumi.yaml, the parser's key list and the README agree.
import * as assert from "assert";
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { CERTIFICATE_SCRIPT } from "../components/reverseProxy";
import { catalog } from "../apps";
import { CONFIG_KEYS, INSTANCE_MEMORY_MB, planMemory } from "../config/platformConfig";
import { PRICES_DATE, costTable } from "../render/scale";
import { parse } from "./fixtures";

const root = path.join(__dirname, "..");
interface Declaration {
    type?: string;
    default?: unknown;
    description?: string;
}
const project = yaml.load(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { name: string; config: Record<string, Declaration> };
const declared = Object.fromEntries(Object.entries(project.config).map(([k, v]) => [k.replace(/^platform:/, ""), v]));

function readmeRows(): Record<string, { type: string; default: string }> {
    const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
    const section = readme.split("## Configuration reference")[1].split("\n## ")[0];
    const rows: Record<string, { type: string; default: string }> = {};
    for (const line of section.split("\n")) {
        const m = /^\| `([A-Za-z]+)` \| (\w+) \| `(.*)` \|/.exec(line);
        if (m) rows[m[1]] = { type: m[2], default: m[3] };
    }
    return rows;
}

describe("configuration reference", () => {
    it("Pulumi.yaml declares exactly the keys the program reads, each with a description and a default", () => {
        assert.strictEqual(project.name, "platform");
        assert.deepStrictEqual(Object.keys(declared).sort(), [...CONFIG_KEYS].sort());
        for (const [key, d] of Object.entries(declared)) {
            assert.ok(d.description && d.description.length > 20, `${key} needs a description`);
            assert.ok("default" in d, `${key} needs a default, or stacks without it fail before validation can explain`);
        }
    });
    it("the README's table matches Pulumi.yaml: same keys, types and defaults", () => {
        const rows = readmeRows();
        assert.deepStrictEqual(Object.keys(rows).sort(), Object.keys(declared).sort());
        for (const [key, d] of Object.entries(declared)) {
            assert.strictEqual(rows[key].type, d.type ?? "map", `${key}: type`);
            assert.strictEqual(rows[key].default, typeof d.default === "string" ? (d.default === "" ? '""' : d.default) : JSON.stringify(d.default), `${key}: default`);
        }
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
    it("Pulumi.prod.yaml is valid once its secrets are set (they are set with --secret, never committed in plain text)", () => {
        const raw = rawOf("Pulumi.prod.yaml");
        assert.strictEqual(raw.registryToken, undefined);
        assert.throws(() => parse(raw), /platform:registryToken: required/);
        const config = parse({ ...raw, registryToken: "set-with---secret" });
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
