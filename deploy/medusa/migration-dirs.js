// Run once at image build time, in the server folder: create the `migrations` folder of every
// installed @medusajs package, beside its main entry (where Medusa's module loader looks for it).
//
// Why: `medusa db:migrate` runs MikroORM's Migrator, whose ensureMigrationsDirExists() calls
// fs-extra's ensureDir on <module>/dist/migrations for every module and provider it loads, and most
// providers (cache-inmemory, event-bus-redis, file, auth-emailpass, ...) ship none. The chart runs
// the image with a read-only root filesystem over a root-owned /app, where that mkdir fails
// (ENOENT/EROFS) and the migrations never run. A folder that already exists is fine: mkdir on an
// existing path returns EEXIST even on a read-only filesystem, which ensureDir accepts. The
// snapshot MikroORM writes after migrating is skipped on a read-only filesystem by MikroORM itself.
const fs = require("node:fs");
const path = require("node:path");

const scope = path.join(process.cwd(), "node_modules", "@medusajs");
let created = 0;
for (const name of fs.readdirSync(scope)) {
  let entry;
  try {
    // The same resolution as @medusajs/modules-sdk's loadResources (dirname of require.resolve).
    entry = require.resolve(`@medusajs/${name}`, { paths: [process.cwd()] });
  } catch {
    continue; // no CommonJS entry: the module loader cannot load it either
  }
  const folder = path.join(path.dirname(entry), "migrations");
  if (!fs.existsSync(folder)) {
    fs.mkdirSync(folder, { recursive: true });
    created += 1;
  }
}
console.log(`migration-dirs: created ${created} empty migrations folders under ${scope}`);
