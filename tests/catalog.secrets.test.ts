// No catalog app may publish its DATABASE_URL: every container running a known echo image sets the
// switches that stop it from answering with its environment, files or request headers.
import * as assert from "assert";
import { catalog } from "../apps";
import { ECHO_IMAGES, ECHO_SERVER_SAFE_ENV, secretEchoProblems } from "../apps/echoServers";
import { AppDefinition } from "../apps/types";

describe("catalog: no app echoes its secrets", () => {
    for (const app of Object.values(catalog)) {
        it(`${app.name}: no container can answer with its DATABASE_URL`, () => {
            assert.deepStrictEqual(secretEchoProblems(app), []);
        });
    }

    it("the demo's echo server has its environment, file, request and cookie echo turned off", () => {
        const env = catalog.demo.backend.env ?? {};
        for (const key of ["ENABLE__ENVIRONMENT", "ENABLE__FILE", "ENABLE__REQUEST", "ENABLE__COOKIES"]) assert.strictEqual(env[key], "false", key);
    });

    it("an echo image without its switches is caught, whatever the tag, digest or case", () => {
        for (const image of ["ealen/echo-server", "Ealen/Echo-Server", "docker.io/ealen/echo-server"]) {
            const bare: AppDefinition = { ...catalog.demo, backend: { ...catalog.demo.backend, image, env: { PORT: "8080" } } };
            const problems = secretEchoProblems(bare);
            assert.strictEqual(problems.length, Object.keys(ECHO_SERVER_SAFE_ENV).length, problems.join("\n"));
            assert.match(problems.join("\n"), /ENABLE__ENVIRONMENT=false/);
        }
        const oneOn: AppDefinition = { ...catalog.demo, backend: { ...catalog.demo.backend, env: { ...catalog.demo.backend.env, ENABLE__ENVIRONMENT: "true" } } };
        assert.match(secretEchoProblems(oneOn).join("\n"), /demo: the backend runs ealen\/echo-server, which echoes .* unless ENABLE__ENVIRONMENT=false/);
    });

    it("a plain variable pointing an echo command at the secret is caught", () => {
        const pointed: AppDefinition = { ...catalog.demo, frontend: { ...catalog.demo.frontend, env: { COMMANDS__HTTPENVBODY__QUERY: "DATABASE_URL" } } };
        assert.match(secretEchoProblems(pointed).join("\n"), /names a secret/);
    });

    it("every listed echo image has at least the environment switch", () => {
        for (const [image, env] of Object.entries(ECHO_IMAGES)) assert.ok(Object.keys(env).length > 0, image);
    });
});
