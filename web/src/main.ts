// Placeholder entry point: the UI comes later. Until then the page exposes the protocol core
// as `window.SecureVox`, so that `vite build` bundles all of it for the browser (and a
// headless-browser test can drive it).
import * as SecureVox from "./core/index.js";

declare global {
  interface Window {
    SecureVox: typeof SecureVox;
  }
}

window.SecureVox = SecureVox;
const app = document.querySelector("#app");
if (app !== null) app.setAttribute("data-ciphersuite", SecureVox.CIPHERSUITE);
