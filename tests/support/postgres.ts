// Test helpers around the throwaway PostgreSQL of io/throwawayPostgres.ts (re-exported here, so the
// suites keep importing from ./support/postgres): requirePostgres (skip loudly, or fail under CI) and
// fakeDocker (a stand-in `docker exec` into a PostgreSQL container).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { type Cluster, findPostgresBinDir } from "../../io/throwawayPostgres";

export type { Cluster, ClusterOptions, PsqlResult } from "../../io/throwawayPostgres";
export { findPostgresBinDir, freeLoopbackPort, startCluster } from "../../io/throwawayPostgres";

/** A missing PostgreSQL fails under CI=true and skips loudly elsewhere (as requireBinary does). */
export function requirePostgres(ctx: Mocha.Context): string {
    const dir = findPostgresBinDir();
    if (dir !== undefined) return dir;
    if (process.env.CI === "true") throw new Error("PostgreSQL server binaries are not installed; .ci/run installs them (apt-get install postgresql)");
    console.warn("\n  !!! SKIPPING: no PostgreSQL server binaries (initdb, pg_ctl). Install postgresql to run this suite (CI fails without it). !!!\n");
    ctx.skip();
}

/**
 * A directory holding a stand-in `docker` for PATH: `docker exec [-i] <container> <program> args…` runs
 * the cluster's own psql/pg_dump/pg_dumpall/pg_restore against it (as the server's binaries would run
 * inside the container); anything else fails. FAKE_DOCKER_FAIL=<program> makes that program fail;
 * FAKE_DOCKER_FAIL_MATCH=<text> makes any call whose arguments contain <text> fail.
 *
 * By default it stands for the container database (platform-postgres, the superuser's password). With
 * `as`, it stands for the managed client container: that container's environment holds the admin's
 * password (PGPASSWORD) and user (PGUSER); a call naming another user with -U fails authentication,
 * unless it passes that user's password with `-e PGPASSWORD` (as a restore login does).
 */
export function fakeDocker(cluster: Cluster, container = "platform-postgres", as?: { user: string; password: string }): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "platform-fake-docker-"));
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const env = as === undefined ? `PGPASSWORD=${q(cluster.password)}` : `PGUSER=${q(as.user)} PGPASSWORD=${q(as.password)} PGDATABASE=postgres`;
    fs.writeFileSync(
        path.join(dir, "docker"),
        [
            "#!/bin/sh",
            "# stand-in for docker exec into a PostgreSQL (or client) container (tests/support/postgres.ts)",
            'echo "$*" >>"${FAKE_DOCKER_LOG:-/dev/null}"',
            'caller_password=${PGPASSWORD-}',
            '[ "$1" = exec ] || { echo "fake docker: only exec is supported" >&2; exit 1; }',
            "shift",
            "# -i, and -e PGPASSWORD (docker passes the caller's value into the container's environment)",
            'pass=""',
            'while [ "$1" = -i ] || [ "$1" = -e ]; do',
            '    if [ "$1" = -e ]; then [ "$2" = PGPASSWORD ] || { echo "fake docker: -e $2 is not supported" >&2; exit 1; }; pass=1; shift 2; else shift; fi',
            "done",
            `[ "$1" = ${q(container)} ] || { echo "Error response from daemon: No such container: $1" >&2; exit 1; }`,
            "shift",
            'program=$1; shift',
            'case $program in psql|pg_dump|pg_dumpall|pg_restore) ;; *) echo "fake docker: $program not allowed" >&2; exit 127 ;; esac',
            'if [ "${FAKE_DOCKER_FAIL:-}" = "$program" ]; then echo "$program: simulated failure" >&2; exit 1; fi',
            'case " $* " in *"${FAKE_DOCKER_FAIL_MATCH:-<never>}"*) echo "$program: error: query failed: ERROR:  permission denied (simulated for: ${FAKE_DOCKER_FAIL_MATCH})" >&2; exit 1 ;; esac',
            `export PGHOST=127.0.0.1 PGPORT=${cluster.port} ${env}`,
            'if [ -n "$pass" ]; then export PGPASSWORD="$caller_password"; fi',
            `exec ${q(cluster.binDir)}/"$program" "$@"`,
            "",
        ].join("\n"),
        { mode: 0o755 },
    );
    return dir;
}
