// Bring a store's database to a usable state; safe to run after every install and upgrade.
//   1. `medusa db:migrate` (retried while PostgreSQL is still starting),
//   2. the admin user from ADMIN_EMAIL / ADMIN_PASSWORD (admin-user.js; skipped when it exists),
//   3. the seed (seed.js: region, sales channel, publishable key, stock, "Test Product").
// Each step is its own `medusa` process, as the CLI expects; credentials stay in the environment.
const { spawnSync } = require("node:child_process");
const path = require("node:path");

const MEDUSA = path.join(__dirname, "node_modules", ".bin", "medusa");
const MIGRATE_ATTEMPTS = Number(process.env.BOOTSTRAP_MIGRATE_ATTEMPTS || 30);
const RETRY_SECONDS = Number(process.env.BOOTSTRAP_RETRY_SECONDS || 5);

function log(message) {
  console.log(`${new Date().toISOString()} bootstrap: ${message}`);
}

function medusa(args) {
  const started = Date.now();
  const result = spawnSync(MEDUSA, args, { cwd: __dirname, env: process.env, stdio: "inherit" });
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  log(`medusa ${args[0]} ${args[1] || ""} exited ${result.status} after ${seconds}s`);
  return result.status === 0;
}

function sleep(seconds) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, seconds * 1000);
}

function main() {
  for (const name of ["ADMIN_EMAIL", "ADMIN_PASSWORD"]) {
    if (!process.env[name]) {
      throw new Error(`${name} is required`);
    }
  }
  let migrated = false;
  for (let attempt = 1; attempt <= MIGRATE_ATTEMPTS && !migrated; attempt += 1) {
    migrated = medusa(["db:migrate"]);
    if (!migrated && attempt < MIGRATE_ATTEMPTS) {
      log(`migrations failed (attempt ${attempt}/${MIGRATE_ATTEMPTS}); retrying in ${RETRY_SECONDS}s`);
      sleep(RETRY_SECONDS);
    }
  }
  if (!migrated) {
    throw new Error("migrations did not succeed");
  }
  if (!medusa(["exec", "./admin-user.js"])) {
    throw new Error("creating the admin user failed");
  }
  if (!medusa(["exec", "./seed.js"])) {
    throw new Error("seeding failed");
  }
  log("done");
}

try {
  main();
} catch (error) {
  log(`failed: ${error.message}`);
  process.exit(1);
}
