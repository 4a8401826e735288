// The layout by role (README "Layout"), enforced: every relative import of the program and the
// commands runs downwards through the layers, and no module imports one that imports it back.
import * as assert from "assert";
import * as fs from "fs";
import * as path from "path";

const REPO = path.resolve(__dirname, "..");

/** Lowest first: a module may import its own layer or a lower one, never a higher one. */
export const LAYERS = ["apps", "render", "config", "hostScripts", "io", "components", "commands", "index.ts"] as const;

function layerOf(file: string): number {
    const top = path.relative(REPO, file).split(path.sep)[0];
    return LAYERS.indexOf(top as (typeof LAYERS)[number]);
}

function sources(): string[] {
    const out: string[] = [path.join(REPO, "index.ts")];
    const walk = (dir: string) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(full);
        }
    };
    for (const layer of LAYERS) if (layer !== "index.ts" && fs.existsSync(path.join(REPO, layer))) walk(path.join(REPO, layer));
    return out;
}

/** Relative imports of a file, resolved to files (`import … from`, `export … from`, `require(…)`, `import(…)`); `import type` included. */
export function importsOf(file: string): string[] {
    const text = fs.readFileSync(file, "utf8");
    const specs = [...text.matchAll(/(?:from\s+|require\(\s*|import\(\s*)["'](\.{1,2}\/[^"']+)["']/g)].map((m) => m[1]);
    return specs.map((spec) => {
        const base = path.resolve(path.dirname(file), spec);
        for (const candidate of [base, `${base}.ts`, path.join(base, "index.ts")]) if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
        throw new Error(`${path.relative(REPO, file)} imports ${spec}, which resolves to no file`);
    });
}

/** Strongly connected components of more than one module (or a module importing itself): the cycles. */
export function cycles(graph: Map<string, string[]>): string[][] {
    let index = 0;
    const indices = new Map<string, number>();
    const low = new Map<string, number>();
    const stack: string[] = [];
    const onStack = new Set<string>();
    const found: string[][] = [];
    const visit = (v: string) => {
        indices.set(v, index);
        low.set(v, index++);
        stack.push(v);
        onStack.add(v);
        for (const w of graph.get(v) ?? []) {
            if (!indices.has(w)) {
                visit(w);
                low.set(v, Math.min(low.get(v)!, low.get(w)!));
            } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indices.get(w)!));
        }
        if (low.get(v) === indices.get(v)) {
            const component: string[] = [];
            let w: string;
            do {
                w = stack.pop()!;
                onStack.delete(w);
                component.push(w);
            } while (w !== v);
            if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
        }
    };
    for (const v of graph.keys()) if (!indices.has(v)) visit(v);
    return found;
}

describe("layers: imports run downwards and form no cycle", () => {
    const graph = new Map(sources().map((f) => [f, importsOf(f)]));
    const rel = (f: string) => path.relative(REPO, f);

    it("every module is in a layer, and imports only its own layer or lower ones", () => {
        const upward: string[] = [];
        for (const [file, imports] of graph) {
            assert.ok(layerOf(file) >= 0, `${rel(file)} is in no layer`);
            for (const target of imports) {
                assert.ok(layerOf(target) >= 0, `${rel(file)} imports ${rel(target)}, outside every layer`);
                if (layerOf(target) > layerOf(file)) upward.push(`${rel(file)} -> ${rel(target)}`);
            }
        }
        assert.deepStrictEqual(upward, [], `imports that run upwards (${LAYERS.join(" < ")})`);
    });

    it("no import cycle", () => {
        assert.deepStrictEqual(cycles(graph).map((c) => c.map(rel)), []);
    });

    it("the check can fail: a planted cycle and an upward edge are found", () => {
        const a = path.join(REPO, "render", "a.ts");
        const b = path.join(REPO, "render", "b.ts");
        assert.deepStrictEqual(cycles(new Map([[a, [b]], [b, [a]]])), [[a, b]]);
        assert.ok(layerOf(path.join(REPO, "components", "x.ts")) > layerOf(path.join(REPO, "render", "x.ts")));
    });
});
