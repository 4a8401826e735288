// The floor of `npm run bench:program`: a plain JavaScript Pulumi program that replays the program's own
// recorded graph (PLATFORM_FLOOR_GRAPH, written by bench/program.ts from a run of the real program against the
// fake engine) through the same path: each custom resource through its package's generated class (the
// packages loaded as the program loads them), providers and components through the SDK's ProviderResource and
// ComponentResource, with the same types, names, parents, inputs (secrets as secrets, unknowns as unknowns, each property depending on the
// same resources), options (provider, protect, deleteBeforeReplace, ignoreChanges, retainOnDelete, version,
// …) and dependencies, in the order the program registered them, then the same outputs. No TypeScript, no
// program logic: what any program declaring this graph pays for the SDK alone. It runs as cmd/run loads any
// JavaScript program, with the SDK's own stack formatting (source-map-support), unless
// PLATFORM_FLOOR_NATIVE_STACKS=1 (the "fast floor": V8's native formatting, as launch/program.js does).
"use strict";
const fs = require("fs");
const pulumi = require("@pulumi/pulumi");

if (process.env.PLATFORM_FLOOR_NATIVE_STACKS === "1") Error.prepareStackTrace = undefined;

const graph = JSON.parse(fs.readFileSync(process.env.PLATFORM_FLOOR_GRAPH, "utf8"));
const SIG = "4dabf18193072939515e22adb298388d";
const SECRET = "1b47061264138c4ac30d75fd1eb44270";
const RESOURCE = "5cf8f73096256a8f31e491e813e4eb8e";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const byUrn = new Map();
const components = [];
/** Each type's package: a program declaring this graph loads them and constructs through their classes. */
const PACKAGES = { docker: "@pulumi/docker", command: "@pulumi/command", random: "@pulumi/random", postgresql: "@pulumi/postgresql", scaleway: "@pulumiverse/scaleway" };
const through = { klass: 0, generic: 0 };

/** The package's generated class for a type token (`docker:index/container:Container`), if it has one. */
function classOf(type) {
    const [pkg, mod, member] = type.split(":");
    if (!PACKAGES[pkg] || mod === undefined || member === undefined) return undefined;
    const exports = require(PACKAGES[pkg]);
    const folder = mod.split("/")[0];
    const klass = folder === "index" ? exports[member] : exports[folder]?.[member];
    return typeof klass === "function" && klass.__pulumiType === type ? klass : undefined;
}

/** An output of `deps` that is unknown in a preview (as the program's values computed from cloud outputs are). */
function unknownOf(deps) {
    const custom = deps.find((r) => pulumi.CustomResource.isInstance(r));
    if (custom) return custom.id.apply(() => undefined);
    return new pulumi.Output(deps, Promise.resolve(undefined), Promise.resolve(false), Promise.resolve(false), Promise.resolve(deps));
}

/** The wire value back to what a program passes: secrets, unknowns, resource references. */
function revive(value, deps) {
    if (value === UNKNOWN) return unknownOf(deps);
    if (Array.isArray(value)) return value.map((v) => revive(v, deps));
    if (value !== null && typeof value === "object") {
        if (value[SIG] === SECRET) return pulumi.secret(revive(value.value, deps));
        if (value[SIG] === RESOURCE) return byUrn.get(value.urn) ?? value.urn;
        if (value[SIG] !== undefined) throw new Error(`the floor cannot replay a special value ${value[SIG]}`);
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v, deps)]));
    }
    return value;
}

for (const r of graph.registrations) {
    if (r.type === "pulumi:pulumi:Stack") continue; // cmd/run registers the stack itself
    const o = r.options;
    const propertyDeps = new Set(Object.values(o.propertyDependencies).flat());
    const inputs = {};
    for (const [key, value] of Object.entries(r.inputs)) {
        const deps = (o.propertyDependencies[key] ?? []).map((u) => byUrn.get(u)).filter(Boolean);
        const revived = revive(value, deps);
        // A property computed from other resources carries them as its dependencies, as in the program.
        inputs[key] = deps.length > 0 && !pulumi.Output.isInstance(revived) ? pulumi.all(deps.map((d) => d.urn)).apply(() => revived) : revived;
    }
    const providerUrn = o.provider ? o.provider.split("::").slice(0, -1).join("::") : "";
    const opts = {
        parent: byUrn.get(r.parent),
        provider: providerUrn ? byUrn.get(providerUrn) : undefined,
        dependsOn: o.dependencies.filter((u) => !propertyDeps.has(u)).map((u) => byUrn.get(u)).filter(Boolean),
        protect: o.protect || undefined,
        deleteBeforeReplace: o.deleteBeforeReplace,
        ignoreChanges: o.ignoreChanges.length ? o.ignoreChanges : undefined,
        replaceOnChanges: o.replaceOnChanges.length ? o.replaceOnChanges : undefined,
        additionalSecretOutputs: o.additionalSecretOutputs.length ? o.additionalSecretOutputs : undefined,
        retainOnDelete: o.retainOnDelete || undefined,
        version: o.version || undefined,
        pluginDownloadURL: o.pluginDownloadURL || undefined,
        customTimeouts: o.customTimeouts,
    };
    let resource;
    if (r.type.startsWith("pulumi:providers:")) {
        resource = new pulumi.ProviderResource(r.type.slice("pulumi:providers:".length), r.name, inputs, opts);
    } else if (r.custom) {
        const klass = classOf(r.type);
        if (klass) {
            resource = new klass(r.name, inputs, opts);
            through.klass++;
        } else {
            resource = new pulumi.CustomResource(r.type, r.name, inputs, opts);
            through.generic++;
        }
    } else {
        resource = new pulumi.ComponentResource(r.type, r.name, {}, opts);
        components.push([resource, r.urn]);
    }
    byUrn.set(r.urn, resource);
}
for (const [component, urn] of components) component.registerOutputs(revive(graph.outputs[urn] ?? {}, []));

if (process.env.PLATFORM_FLOOR_REPORT) fs.writeFileSync(process.env.PLATFORM_FLOOR_REPORT, JSON.stringify(through));

const stack = graph.registrations.find((r) => r.type === "pulumi:pulumi:Stack");
module.exports = revive((stack && graph.outputs[stack.urn]) ?? {}, []);
