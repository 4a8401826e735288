// The platform's CrossGuard policy pack: `pulumi preview --policy-pack policy` (and `up`). Every rule
// is mandatory: a violating change fails the preview with the rule's message. The rules are in
// rules.ts; this file only hands each resource to them.
import { PolicyPack, ResourceValidationPolicy } from "@pulumi/policy";
import { RULES } from "./rules";

// @pulumi/policy's proxy.js (not in its typings): the keys that mark its proxies and reach their target.
const isSpecialProxy = "__isSpecialProxy";
const getSpecialProxyTarget = "__getSpecialProxyTarget";

const policies: ResourceValidationPolicy[] = Object.entries(RULES).map(([name, rule]) => ({
    name,
    description: rule.description,
    enforcementLevel: "mandatory",
    validateResource: (args, reportViolation) => {
        const subject = { type: args.type, name: args.name, props: rawProps(args.props), protect: args.opts.protect };
        for (const problem of rule.check(subject)) reportViolation(problem);
    },
}));

/** The inputs with their secrets still wrapped: @pulumi/policy's proxies unwrap them on every read. */
function rawProps(props: Record<string, unknown>): Record<string, unknown> {
    let target: Record<string, unknown> = props;
    while (target[isSpecialProxy] === true) target = target[getSpecialProxyTarget] as Record<string, unknown>;
    return target;
}

new PolicyPack("platform", { policies });
