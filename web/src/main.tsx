// The SecureVox web app: Preact over the protocol core (src/core/).
import { render } from "preact";
import { App } from "./app/App.js";
import "./app/styles.css";

const root = document.querySelector("#app");
if (root !== null) render(<App />, root);
