// Seed one store with everything a Store API checkout needs; run with `medusa exec ./seed.js`.
// Each part is looked up first and created only when missing, so running it again changes nothing
// (and finishes a run that stopped half-way).
//
// Environment: STORE_NAME, SEED_REGION_NAME, SEED_CURRENCY_CODE, SEED_COUNTRY_CODE,
// SEED_PRODUCT_TITLE, SEED_PRODUCT_PRICE (all optional).
const { ContainerRegistrationKeys, Modules, ProductStatus } = require("@medusajs/framework/utils");
const {
  createApiKeysWorkflow,
  createInventoryLevelsWorkflow,
  createProductsWorkflow,
  createRegionsWorkflow,
  createSalesChannelsWorkflow,
  createShippingOptionsWorkflow,
  createShippingProfilesWorkflow,
  createStockLocationsWorkflow,
  createTaxRegionsWorkflow,
  linkSalesChannelsToApiKeyWorkflow,
  linkSalesChannelsToStockLocationWorkflow,
  updateStoresWorkflow,
} = require("@medusajs/medusa/core-flows");

const settings = {
  storeName: process.env.STORE_NAME || "Demo",
  regionName: process.env.SEED_REGION_NAME || "Europe",
  currency: (process.env.SEED_CURRENCY_CODE || "eur").toLowerCase(),
  country: (process.env.SEED_COUNTRY_CODE || "de").toLowerCase(),
  productTitle: process.env.SEED_PRODUCT_TITLE || "Test Product",
  productPrice: Number(process.env.SEED_PRODUCT_PRICE || "19.99"),
};
const NAMES = {
  salesChannel: "Default Sales Channel",
  apiKey: "Webshop",
  stockLocation: "Main Warehouse",
  fulfillmentSet: "Main Warehouse delivery",
  shippingProfile: "Default Shipping Profile",
  shippingOption: "Standard Shipping",
  sku: "TEST-PRODUCT",
};
const MANUAL_FULFILLMENT = "manual_manual";
const SYSTEM_PAYMENT = "pp_system_default";

async function seed({ container }) {
  const logger = container.resolve("logger");
  const query = container.resolve(ContainerRegistrationKeys.QUERY);
  const link = container.resolve(ContainerRegistrationKeys.LINK);
  const salesChannels = container.resolve(Modules.SALES_CHANNEL);
  const regions = container.resolve(Modules.REGION);
  const taxes = container.resolve(Modules.TAX);
  const stockLocations = container.resolve(Modules.STOCK_LOCATION);
  const fulfillment = container.resolve(Modules.FULFILLMENT);
  const apiKeys = container.resolve(Modules.API_KEY);
  const products = container.resolve(Modules.PRODUCT);
  const inventory = container.resolve(Modules.INVENTORY);
  const stores = container.resolve(Modules.STORE);

  async function findOrCreate(what, find, create) {
    const [found] = await find();
    if (found) {
      logger.info(`seed: ${what} exists (${found.id})`);
      return found;
    }
    const created = await create();
    logger.info(`seed: ${what} created (${created.id})`);
    return created;
  }

  const channel = await findOrCreate(
    "sales channel",
    () => salesChannels.listSalesChannels({ name: NAMES.salesChannel }),
    async () => {
      const { result } = await createSalesChannelsWorkflow(container).run({
        input: { salesChannelsData: [{ name: NAMES.salesChannel }] },
      });
      return result[0];
    },
  );

  const [store] = await stores.listStores({}, { relations: ["supported_currencies"] });
  const currencies = (store.supported_currencies || []).map((c) => `${c.currency_code}:${c.is_default}`);
  const storeIsSet =
    store.name === settings.storeName &&
    store.default_sales_channel_id === channel.id &&
    currencies.length === 1 &&
    currencies[0] === `${settings.currency}:true`;
  if (storeIsSet) {
    logger.info(`seed: store settings already applied (${store.id})`);
  } else {
    await updateStoresWorkflow(container).run({
      input: {
        selector: { id: store.id },
        update: {
          name: settings.storeName,
          supported_currencies: [{ currency_code: settings.currency, is_default: true }],
          default_sales_channel_id: channel.id,
        },
      },
    });
    logger.info(`seed: store settings applied (${store.id})`);
  }

  const region = await findOrCreate(
    "region",
    () => regions.listRegions({ name: settings.regionName }),
    async () => {
      const { result } = await createRegionsWorkflow(container).run({
        input: {
          regions: [
            {
              name: settings.regionName,
              currency_code: settings.currency,
              countries: [settings.country],
              payment_providers: [SYSTEM_PAYMENT],
            },
          ],
        },
      });
      return result[0];
    },
  );

  await findOrCreate(
    "tax region",
    () => taxes.listTaxRegions({ country_code: settings.country }),
    async () => {
      const { result } = await createTaxRegionsWorkflow(container).run({
        input: [{ country_code: settings.country, provider_id: "tp_system" }],
      });
      return result[0];
    },
  );

  const location = await findOrCreate(
    "stock location",
    () => stockLocations.listStockLocations({ name: NAMES.stockLocation }),
    async () => {
      const { result } = await createStockLocationsWorkflow(container).run({
        input: {
          locations: [
            { name: NAMES.stockLocation, address: { address_1: "", city: "", country_code: settings.country } },
          ],
        },
      });
      return result[0];
    },
  );

  const profile = await findOrCreate(
    "shipping profile",
    () => fulfillment.listShippingProfiles({ type: "default" }),
    async () => {
      const { result } = await createShippingProfilesWorkflow(container).run({
        input: { data: [{ name: NAMES.shippingProfile, type: "default" }] },
      });
      return result[0];
    },
  );

  const fulfillmentSet = await findOrCreate(
    "fulfillment set",
    () => fulfillment.listFulfillmentSets({ name: NAMES.fulfillmentSet }, { relations: ["service_zones"] }),
    () =>
      fulfillment.createFulfillmentSets({
        name: NAMES.fulfillmentSet,
        type: "shipping",
        service_zones: [
          { name: settings.regionName, geo_zones: [{ type: "country", country_code: settings.country }] },
        ],
      }),
  );
  const serviceZoneId = fulfillmentSet.service_zones[0].id;

  const {
    data: [linked],
  } = await query.graph({
    entity: "stock_location",
    fields: ["id", "fulfillment_providers.id", "fulfillment_sets.id", "sales_channels.id"],
    filters: { id: location.id },
  });
  const has = (items, id) => (items || []).some((item) => item && item.id === id);
  if (!has(linked.fulfillment_providers, MANUAL_FULFILLMENT)) {
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_provider_id: MANUAL_FULFILLMENT },
    });
    logger.info("seed: stock location linked to the manual fulfilment provider");
  }
  if (!has(linked.fulfillment_sets, fulfillmentSet.id)) {
    await link.create({
      [Modules.STOCK_LOCATION]: { stock_location_id: location.id },
      [Modules.FULFILLMENT]: { fulfillment_set_id: fulfillmentSet.id },
    });
    logger.info("seed: stock location linked to the fulfilment set");
  }
  if (!has(linked.sales_channels, channel.id)) {
    await linkSalesChannelsToStockLocationWorkflow(container).run({
      input: { id: location.id, add: [channel.id] },
    });
    logger.info("seed: stock location linked to the sales channel");
  }

  await findOrCreate(
    "shipping option",
    () => fulfillment.listShippingOptions({ name: NAMES.shippingOption }),
    async () => {
      const { result } = await createShippingOptionsWorkflow(container).run({
        input: [
          {
            name: NAMES.shippingOption,
            price_type: "flat",
            provider_id: MANUAL_FULFILLMENT,
            service_zone_id: serviceZoneId,
            shipping_profile_id: profile.id,
            type: { label: "Standard", description: "Delivered in 2-3 days.", code: "standard" },
            prices: [
              { currency_code: settings.currency, amount: 5 },
              { region_id: region.id, amount: 5 },
            ],
            rules: [
              { attribute: "enabled_in_store", value: "true", operator: "eq" },
              { attribute: "is_return", value: "false", operator: "eq" },
            ],
          },
        ],
      });
      return result[0];
    },
  );

  // Medusa creates "Default Publishable API Key" (linked to the default channel) when the application
  // first starts, which the admin-user step already did; reuse any unrevoked publishable key rather
  // than adding a second one, and create "Webshop" only when there is none.
  const apiKey = await findOrCreate(
    "publishable API key",
    async () =>
      (await apiKeys.listApiKeys({ type: "publishable" }))
        .filter((key) => !key.revoked_at)
        .sort((a, b) => Number(b.title === NAMES.apiKey) - Number(a.title === NAMES.apiKey)),
    async () => {
      const { result } = await createApiKeysWorkflow(container).run({
        input: { api_keys: [{ title: NAMES.apiKey, type: "publishable", created_by: "" }] },
      });
      return result[0];
    },
  );
  const {
    data: [keyLinks],
  } = await query.graph({ entity: "api_key", fields: ["id", "sales_channels.id"], filters: { id: apiKey.id } });
  if (!has(keyLinks.sales_channels, channel.id)) {
    await linkSalesChannelsToApiKeyWorkflow(container).run({ input: { id: apiKey.id, add: [channel.id] } });
    logger.info("seed: publishable API key linked to the sales channel");
  }
  // Publishable keys are public by design (browsers send them). The platform reads it through the
  // Admin API (GET /admin/api-keys?type=publishable); the log line helps whoever reads the Job's log.
  logger.info(`seed: publishable API key ${apiKey.token}`);

  await findOrCreate(
    "product",
    () => products.listProducts({ title: settings.productTitle }),
    async () => {
      const { result } = await createProductsWorkflow(container).run({
        input: {
          products: [
            {
              title: settings.productTitle,
              status: ProductStatus.PUBLISHED,
              shipping_profile_id: profile.id,
              options: [{ title: "Default", values: ["Default"] }],
              variants: [
                {
                  title: "Default",
                  sku: NAMES.sku,
                  manage_inventory: true,
                  options: { Default: "Default" },
                  prices: [{ currency_code: settings.currency, amount: settings.productPrice }],
                },
              ],
              sales_channels: [{ id: channel.id }],
            },
          ],
        },
      });
      return result[0];
    },
  );

  const [item] = await inventory.listInventoryItems({ sku: NAMES.sku });
  if (!item) {
    throw new Error(`no inventory item for SKU ${NAMES.sku}`);
  }
  await findOrCreate(
    "inventory level",
    () => inventory.listInventoryLevels({ inventory_item_id: item.id, location_id: location.id }),
    async () => {
      const { result } = await createInventoryLevelsWorkflow(container).run({
        input: { inventory_levels: [{ inventory_item_id: item.id, location_id: location.id, stocked_quantity: 1000 }] },
      });
      return result[0];
    },
  );
  logger.info("seed: done");
}

// `medusa exec` takes the module's `default` export; a function that is also its own `default`
// sends Medusa's resolveExports into endless recursion, so export an object.
exports.default = seed;
