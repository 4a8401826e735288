// A resource graph as data: every registration's type, name, URN, parent, provider, inputs (secrets
// marked) and the options only the monitor sees, normalised so two runs of the same program compare
// equal (auto-named containers, the home and temp directories). The scale tests record the default
// configs' graphs as fixtures and compare the program's graphs against them.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Registration, RunResult, T, isSecretValue } from "../harness";

export interface GraphNode {
    readonly type: string;
    readonly name: string;
    readonly urn: string;
    readonly parent: string;
    readonly provider: string;
    readonly custom: boolean;
    readonly inputs: unknown;
    readonly deleteBeforeReplace: boolean;
    readonly deleteBeforeReplaceDefined: boolean;
    readonly protect: boolean;
    readonly retainOnDelete: boolean;
    readonly ignoreChanges: string[];
    readonly dependencies: string[];
}

function markSecrets(value: unknown): unknown {
    if (isSecretValue(value)) return { "<secret>": markSecrets((value as { value: unknown }).value) };
    if (Array.isArray(value)) return value.map(markSecrets);
    if (typeof value === "object" && value !== null) return Object.fromEntries(Object.keys(value).sort().map((k) => [k, markSecrets((value as Record<string, unknown>)[k])]));
    return value;
}

const REPO_ROOT = path.resolve(__dirname, "..", "..");

export function graphOf(run: RunResult): GraphNode[] {
    const autoNamed = run.resources.filter((r) => r.type === T.container && r.inputs.name === undefined).map((r) => r.name);
    const nodes = run.resources.map((r: Registration) => ({
        type: r.type,
        name: r.name,
        urn: r.urn,
        parent: r.parent,
        provider: r.provider,
        custom: r.custom,
        // A dynamic resource's serialized provider is its code: a fixture records that it has one, not the text.
        inputs: markSecrets("__provider" in r.inputs ? { ...r.inputs, __provider: "<serialized dynamic provider>" } : r.inputs),
        deleteBeforeReplace: r.deleteBeforeReplace,
        deleteBeforeReplaceDefined: r.deleteBeforeReplaceDefined,
        protect: r.protect,
        retainOnDelete: r.retainOnDelete,
        ignoreChanges: [...r.ignoreChanges].sort(),
        dependencies: [...r.dependencies].sort(),
    }));
    let text = JSON.stringify(nodes.sort((a, b) => a.urn.localeCompare(b.urn)));
    for (const name of autoNamed) text = text.replace(new RegExp(`\\b${name}-[0-9a-f]{7}\\b`, "g"), `${name}-<auto>`);
    // The local stack's paths are absolute: a checkout anywhere else (CI's fresh clone) must compare equal.
    text = text.split(REPO_ROOT + "/").join("<repo>/");
    text = text.split(os.homedir() + "/").join("<home>/");
    // Whether this machine has age is an input of the local backup command (so installing it later re-runs
    // it); a machine without age must compare equal to the recorded graph too.
    text = text.replace(/"age (present|missing)"/g, '"age <present|missing>"');
    return JSON.parse(text);
}

export const FIXTURE_DIR = path.join(__dirname, "..", "fixtures");

export function fixturePath(name: string): string {
    return path.join(FIXTURE_DIR, `graph-${name}.json`);
}

export function readGraphFixture(name: string): GraphNode[] {
    return JSON.parse(fs.readFileSync(fixturePath(name), "utf8"));
}

export function writeGraphFixture(name: string, graph: GraphNode[]): void {
    fs.writeFileSync(fixturePath(name), JSON.stringify(graph, null, 1) + "\n");
}

/** Differences between two graphs, one line each (empty when identical). */
export function graphDifferences(expected: GraphNode[], actual: GraphNode[]): string[] {
    const byUrn = (g: GraphNode[]) => new Map(g.map((n) => [n.urn, n]));
    const e = byUrn(expected);
    const a = byUrn(actual);
    const out: string[] = [];
    for (const [urn, node] of e) {
        const other = a.get(urn);
        if (other === undefined) out.push(`missing: ${urn}`);
        else {
            for (const key of Object.keys(node) as (keyof GraphNode)[]) {
                const x = JSON.stringify(node[key]);
                const y = JSON.stringify(other[key]);
                if (x !== y) out.push(`changed ${key} of ${urn}: ${x.slice(0, 300)} → ${y.slice(0, 300)}`);
            }
        }
    }
    for (const urn of a.keys()) if (!e.has(urn)) out.push(`added: ${urn}`);
    return out;
}
