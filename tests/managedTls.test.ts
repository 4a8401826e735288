// The managed database's TLS settings as rendered (issue 20 item 9); tests/managedTls.real.test.ts
// runs them against real servers and men in the middle.
import * as assert from "assert";
import { PLACEHOLDER_DB_CERTIFICATE } from "../commands/programGraph";
import { adminTlsChanged, managedAdminConnection, openAdminSession } from "../io/appDatabaseProvider";
import { MANAGED_CLIENT_ROOT_CERT, databaseUrl, managedAppEndpoint, managedClientEnv, managedServerTls } from "../render/postgres";

describe("managed database TLS settings", () => {
    it("verify-full only when the instance's certificate names the endpoint's IP; verify-ca otherwise; no certificate, no settings", () => {
        assert.strictEqual(managedServerTls(PLACEHOLDER_DB_CERTIFICATE, "172.16.32.9").sslmode, "verify-full");
        assert.strictEqual(managedServerTls(PLACEHOLDER_DB_CERTIFICATE, "172.16.32.10").sslmode, "verify-ca");
        assert.throws(() => managedServerTls("", "172.16.32.9"), /no TLS certificate/);
        assert.throws(() => managedServerTls(PLACEHOLDER_DB_CERTIFICATE, "db.internal"), /not the endpoint's IPv4 address/);
    });

    it("the apps' DATABASE_URL requires TLS and channel binding; the container database's stays plain", () => {
        const e = managedAppEndpoint("172.16.32.9", 5432);
        assert.strictEqual(databaseUrl("app_a", "p@ss", e.host, e.port, "a_db", e.sslmode, e.channelBinding), "postgres://app_a:p%40ss@172.16.32.9:5432/a_db?sslmode=require&channel_binding=require");
        assert.strictEqual(databaseUrl("app_a", "pw", "postgres", 5432, "a_db"), "postgres://app_a:pw@postgres:5432/a_db?sslmode=disable");
    });

    it("the client container verifies against the instance's certificate and requires channel binding; no password in what is rendered", () => {
        const env = managedClientEnv({ ip: "172.16.32.9", port: 5432 }, managedServerTls(PLACEHOLDER_DB_CERTIFICATE, "172.16.32.9"), "platform_admin");
        for (const e of ["PGSSLMODE=verify-full", `PGSSLROOTCERT=${MANAGED_CLIENT_ROOT_CERT}`, "PGCHANNELBINDING=require", `PLATFORM_DB_ROOT_CERT=${PLACEHOLDER_DB_CERTIFICATE}`]) assert.ok(env.includes(e), e);
        assert.ok(!env.some((e) => e.startsWith("PGPASSWORD=")));
    });

    it("a state whose admin connection predates the checks takes the new one (an update), and is never used unchecked", async () => {
        const tls = managedServerTls(PLACEHOLDER_DB_CERTIFICATE, "172.16.32.9");
        const checked = managedAdminConnection({ host: "127.0.0.1", port: 40123 }, "platform_admin", "pw", tls);
        const { tls: _dropped, ...old } = checked;
        assert.strictEqual(adminTlsChanged({ admin: old }, { admin: checked }), true);
        assert.strictEqual(adminTlsChanged({ admin: checked }, { admin: { ...checked, port: 40999 } }), false, "a new forward port alone is no change");
        assert.strictEqual(adminTlsChanged({ admin: { ...old, ssl: false } }, { admin: { ...old, ssl: false } }), false, "the container server has no TLS settings");
        await assert.rejects(openAdminSession(old), /will not authenticate.*run `pulumi up`/);
    });
});
