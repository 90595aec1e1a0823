// Create the store's admin user from ADMIN_EMAIL / ADMIN_PASSWORD unless it exists.
// Run with `medusa exec ./admin-user.js`. Unlike `medusa user -p`, the password never appears in a
// process's arguments.
const { Modules } = require("@medusajs/framework/utils");

async function createAdminUser({ container }) {
  const logger = container.resolve("logger");
  const email = process.env.ADMIN_EMAIL;
  const password = process.env.ADMIN_PASSWORD;
  if (!email || !password) {
    throw new Error("ADMIN_EMAIL and ADMIN_PASSWORD are required");
  }
  const users = container.resolve(Modules.USER);
  const auth = container.resolve(Modules.AUTH);

  const [existing] = await users.listUsers({ email });
  if (existing) {
    logger.info(`admin user ${email} already exists`);
    return;
  }
  const user = await users.createUsers({ email });
  const { authIdentity, error } = await auth.register("emailpass", { body: { email, password } });
  if (error || !authIdentity) {
    await users.deleteUsers([user.id]);
    throw new Error(`could not register ${email}: ${error}`);
  }
  await auth.updateAuthIdentities({ id: authIdentity.id, app_metadata: { user_id: user.id } });
  logger.info(`admin user ${email} created`);
}

// `medusa exec` takes the module's `default` export; a function that is also its own `default`
// sends Medusa's resolveExports into endless recursion, so export an object.
exports.default = createAdminUser;
