import { app1 } from "./app1";
import { app2 } from "./app2";
import { demo } from "./demo";
import { AppDefinition } from "./types";

export * from "./types";

/** Every application the platform knows how to run; a stack runs those its `platform:apps` lists. */
export const catalog: Readonly<Record<string, AppDefinition>> = Object.fromEntries(
    [app1, app2, demo].map((app) => [app.name, app]),
);
