// A real OpenID Connect provider for the tests, the docs and the bench:
// panva's oidc-provider (OpenID Certified), with its development login and
// consent pages, on a loopback port. harness/oidc.py installs the package
// into a cache folder, then starts this file with Node.js, configured from
// the environment:
//
//   OIDC_PROVIDER_MODULE  where oidc-provider's lib/index.js is
//   OIDC_ISSUER           http://127.0.0.1:PORT, the issuer it names itself
//   OIDC_PORT             the port to listen on, on 127.0.0.1
//   OIDC_CLIENTS          JSON: the clients (client_id, client_secret, redirect_uris)
//   OIDC_ACCOUNTS         JSON: {login: claims}; any other login is an account
//                         of its own, with a verified address at provider.example
import { pathToFileURL } from "node:url";
import { randomBytes } from "node:crypto";

const { default: Provider } = await import(pathToFileURL(process.env.OIDC_PROVIDER_MODULE).href);
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || "{}");

const provider = new Provider(process.env.OIDC_ISSUER, {
  clients: JSON.parse(process.env.OIDC_CLIENTS),
  // The development pages take any login name (it becomes `sub`) and any password.
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, sub) {
    const claims = accounts[sub] ?? { email: `${sub}@provider.example`, email_verified: true };
    return { accountId: sub, claims: async () => ({ sub, preferred_username: sub, ...claims }) };
  },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["preferred_username", "name"] },
  // The scopes' claims in the ID token itself, as most providers send them.
  conformIdTokenClaims: false,
  // Every client must use PKCE (S256): a code without its verifier is worth nothing.
  pkce: { methods: ["S256"], required: () => true },
  cookies: { keys: [randomBytes(32).toString("hex")] },
});

// The development pages warn on every start; say once that they are meant here.
provider.on("server_error", (ctx, error) => console.error("server_error", error));
provider.listen(Number(process.env.OIDC_PORT), "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${process.env.OIDC_ISSUER}`);
});
