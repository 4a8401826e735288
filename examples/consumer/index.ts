// A consumer program: a Pulumi project of its own that reads one app's URL and DATABASE_URL from
// the platform stack. Run it from this directory:
//   npm install && pulumi stack init dev
//   pulumi config set platformStack <org>/platform/prod && pulumi config set app app1
//   pulumi up
import * as pulumi from "@pulumi/pulumi";
import { readPlatform } from "./platform";

const config = new pulumi.Config();
const { appUrl, databaseUrl } = readPlatform(config.require("platformStack"), config.get("app") ?? "app1");

/** The app's public URL. */
export const url = appUrl;
/** Secret: the app's DATABASE_URL, for a worker or a migration job that runs elsewhere. */
export const appDatabaseUrl = databaseUrl;
