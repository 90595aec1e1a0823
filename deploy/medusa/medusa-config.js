// Medusa configuration read entirely from the environment, so one image serves every store.
//
// Database: DATABASE_URL, or DATABASE_HOST/PORT/NAME/USER/PASSWORD (the chart's form, which keeps
// the password in its own Secret key and URL-encodes it here). Redis: REDIS_URL (optional; without
// it Medusa falls back to its in-memory event bus and workflow engine). Secrets: JWT_SECRET and
// COOKIE_SECRET. CORS: STORE_CORS, ADMIN_CORS, AUTH_CORS (the store's public URL).
// `medusa build` runs with MEDUSA_BUILD=1 and no secrets: nothing below is needed to compile.
const { defineConfig, loadEnv } = require("@medusajs/framework/utils");

loadEnv(process.env.NODE_ENV || "development", process.cwd());

const building = process.env.MEDUSA_BUILD === "1";

function required(name) {
  const value = process.env[name];
  if (!value && !building) {
    throw new Error(`medusa-config: environment variable ${name} is required`);
  }
  return value || undefined;
}

function databaseUrl() {
  if (process.env.DATABASE_URL) {
    return process.env.DATABASE_URL;
  }
  if (building) {
    return undefined;
  }
  const user = encodeURIComponent(required("DATABASE_USER"));
  const password = encodeURIComponent(required("DATABASE_PASSWORD"));
  const host = required("DATABASE_HOST");
  const port = process.env.DATABASE_PORT || "5432";
  const name = required("DATABASE_NAME");
  return `postgres://${user}:${password}@${host}:${port}/${name}`;
}

const redisUrl = process.env.REDIS_URL || undefined;
const redisModules = redisUrl
  ? [
      { resolve: "@medusajs/medusa/event-bus-redis", options: { redisUrl } },
      { resolve: "@medusajs/medusa/workflow-engine-redis", options: { redis: { redisUrl } } },
    ]
  : [];

module.exports = defineConfig({
  projectConfig: {
    databaseUrl: databaseUrl(),
    // The chart's PostgreSQL runs without TLS inside the namespace.
    databaseDriverOptions: { connection: { ssl: false } },
    redisUrl,
    workerMode: process.env.MEDUSA_WORKER_MODE || "shared",
    http: {
      storeCors: required("STORE_CORS"),
      adminCors: required("ADMIN_CORS"),
      authCors: required("AUTH_CORS"),
      jwtSecret: required("JWT_SECRET"),
      cookieSecret: required("COOKIE_SECRET"),
    },
  },
  admin: {
    disable: process.env.MEDUSA_ADMIN_DISABLE === "true",
    // Same origin as the API: the admin at /app calls /admin on whatever host serves it.
    backendUrl: process.env.MEDUSA_ADMIN_BACKEND_URL || "/",
  },
  modules: redisModules,
});
