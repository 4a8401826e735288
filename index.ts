// The platform program: validate the stack config (before any resource exists), compose, export.
import { definePlatform } from "./platform";
import { readPlatformConfig } from "./lib/readConfig";

const platform = definePlatform(readPlatformConfig());

/** The server's flexible IP (127.0.0.1 on the local stack): point the domain's A record here. */
export const publicIp = platform.publicIp;
/** `https://<domain>/` (or `http://localhost:<port>/` on the local stack). */
export const baseUrl = platform.baseUrl;
/** Per app: `{ url, apiUrl, release, database, role }`. */
export const apps = platform.apps;
/** Secret. Per app with a database: its DATABASE_URL. */
export const databaseUrls = platform.databaseUrls;
