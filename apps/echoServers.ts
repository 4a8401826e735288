import { AppDefinition, ContainerDefinition } from "./types";

/**
 * ealen/echo-server's switches (nconf, `__` separator, values parsed): each is `true` upstream.
 * - ENABLE__ENVIRONMENT: the `env` object in every answer and the `?echo_env_body=NAME` /
 *   `x-echo-env-body` command (any one variable, `DATABASE_URL` included);
 * - ENABLE__FILE: `?echo_file=PATH` / `x-echo-file` reads any file the process can (`/proc/self/environ`);
 * - ENABLE__REQUEST: the request's headers (Cookie and Authorization, of every app on the shared origin);
 * - ENABLE__COOKIES: the parsed cookies (HttpOnly ones become readable by any page's script).
 */
export const ECHO_SERVER_SAFE_ENV: Readonly<Record<string, string>> = {
    ENABLE__ENVIRONMENT: "false",
    ENABLE__FILE: "false",
    ENABLE__REQUEST: "false",
    ENABLE__COOKIES: "false",
};

/**
 * Images that echo what they are given unless told not to, with the environment that stops them from
 * publishing their secrets. A catalog container running one of these must set every variable listed.
 */
export const ECHO_IMAGES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
    "ealen/echo-server": ECHO_SERVER_SAFE_ENV,
    "docker.io/ealen/echo-server": ECHO_SERVER_SAFE_ENV,
};

/** Repository of an image reference without tag or digest, lowercased. */
function repository(image: string): string {
    return image.toLowerCase().replace(/@.*$/, "").replace(/:[^/]*$/, "");
}

/**
 * Why `app` could publish its DATABASE_URL or another secret in a response; empty when it cannot as
 * far as the catalog can tell: an echo image without its safe switches, or a plain env value that
 * names the secret (a variable set to `DATABASE_URL` is how an echo command is pointed at it).
 */
export function secretEchoProblems(app: AppDefinition): string[] {
    const problems: string[] = [];
    for (const [role, c] of [
        ["frontend", app.frontend],
        ["backend", app.backend],
    ] as const) {
        const container = c as ContainerDefinition;
        const needed = ECHO_IMAGES[repository(container.image)];
        const env = container.env ?? {};
        if (needed !== undefined) {
            for (const [key, value] of Object.entries(needed)) {
                if (env[key] !== value) {
                    problems.push(`app ${app.name}: the ${role} runs ${container.image}, which echoes its environment or requests unless ${key}=${value}; set it in its env (apps/${app.name}.ts)`);
                }
            }
        }
        for (const [key, value] of Object.entries(env)) {
            if (/DATABASE_URL|PASSWORD|SECRET|TOKEN/i.test(value)) {
                problems.push(`app ${app.name}: the ${role}'s env ${key}=${value} names a secret; a plain variable must not point at one`);
            }
        }
    }
    return problems;
}
