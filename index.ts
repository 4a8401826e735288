// The platform program: validate the stack config (before any resource exists), compose, export.
import { definePlatform } from "./components/platform";
import { readPlatformConfig } from "./io/readConfig";
import { reportErrorsAsRunErrors } from "./io/runErrors";

// Under `pulumi preview`/`up`, every error from here on (config, admin channel, host key, readiness, any
// `apply`) is reported as a run error within milliseconds, not after a minute in Node 20's util.inspect.
reportErrorsAsRunErrors();

const platform = definePlatform(readPlatformConfig());

/** The server's flexible IP (127.0.0.1 on the local stack): point the domain's A record here. */
export const publicIp = platform.publicIp;
/** `https://<domain>/` (or `http://localhost:<port>/` on the local stack). */
export const baseUrl = platform.baseUrl;
/** Per app: `{ url, apiUrl, release, database, role }`. */
export const apps = platform.apps;
/** Secret. Per app with a database: its DATABASE_URL. */
export const databaseUrls = platform.databaseUrls;
/**
 * Where the nightly encrypted backups go: the bucket (a directory on the local stack), and its S3
 * endpoint (`file://…` locally). `""` when no app has a database, so nothing is backed up: an output
 * is always a documented value, never undefined (Pulumi would drop it with a warning).
 */
export const backupBucket = platform.backupBucket ?? "";
export const backupEndpoint = platform.backupEndpoint ?? "";
