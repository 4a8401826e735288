// The platform program: validate the stack config (before any resource exists), compose, export.
import * as pulumi from "@pulumi/pulumi";
import { definePlatform } from "./components/platform";
import { readPlatformConfig } from "./io/readConfig";
import { reportErrorsAsRunErrors } from "./io/runErrors";
import { dnsRecordFor } from "./render/dns";

// Under `pulumi preview`/`up`, every error from here on (config, admin channel, host key, readiness, any
// `apply`) is reported as a run error within milliseconds, not after a minute in Node 20's util.inspect.
reportErrorsAsRunErrors();

const config = readPlatformConfig();
const platform = definePlatform(config);

/** The server's flexible IP (127.0.0.1 on the local stack): point the domain's A record here. */
export const publicIp = platform.publicIp;
/**
 * scaleway: the DNS record to create at the domain's DNS provider (`<domain>. 300 IN A <publicIp>`, the
 * load balancer's address when there are several hosts), and how to check it. The certificate is issued
 * once it resolves. `null` on the local stack, which needs none (an output is never undefined).
 */
export const dnsRecord = config.target === "scaleway" ? platform.publicIp.apply((ip) => dnsRecordFor(config.domain, ip)) : pulumi.output(null);
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
/**
 * Secret. The backup drill's own API key, `{ accessKey, secretKey }`: it may list and read the backup
 * bucket, nothing else (the drill workflow's DRILL_SCW_ACCESS_KEY / DRILL_SCW_SECRET_KEY). Empty
 * strings where there is no bucket (the local stack, or no app database).
 */
/**
 * Several hosts: whether the load balancer has its Let's Encrypt certificate and ends TLS. False until
 * the domain resolves to it (the balancer serves HTTP until then; run `up` again once the record in
 * dnsRecord exists); once true it stays true. `null` on one host, whose edge gets its own certificate.
 */
export const loadBalancerTls = platform.loadBalancerTls ?? null;
export const backupDrillKey = platform.backupDrillKey ?? pulumi.secret({ accessKey: "", secretKey: "" });
