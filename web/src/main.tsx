// The SecureVox web app: Preact over the protocol core (src/core/).
import { render } from "preact";
import { App } from "./app/App.js";
import "./app/styles.css";

const root = document.querySelector("#app");
if (root !== null) render(<App />, root);

// A file dropped outside the conversation (which takes it) must not make the browser leave the
// app to show it.
for (const event of ["dragover", "drop"] as const) {
  window.addEventListener(event, (e) => {
    if (e.dataTransfer?.types.includes("Files") === true) e.preventDefault();
  });
}
