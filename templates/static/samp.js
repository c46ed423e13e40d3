/* A small SAMP Web Profile client (SAMP 1.3, section 5): send tables and images to TOPCAT,
 * Aladin or any other SAMP tool running on the user's desktop.
 *
 * A browser page cannot read the Standard Profile's ~/.samp file, so the
 * Web Profile hub listens at a well-known address, http://localhost:21012/,
 * and speaks XML-RPC over HTTP POST, with CORS headers so that pages of any
 * origin may call it. Its methods are the hub's usual ones named
 * "samp.webhub.<method>", with the client's private key as first argument;
 * registration, "samp.webhub.register(identity-info)", makes the hub ask the
 * user (a dialogue on the desktop) whether this page may connect. That is
 * why the page registers only when the user asks to send something.
 *
 * This client only sends notifications (table.load.votable, image.load.fits)
 * and so never asks the hub for callbacks (allowReverseCallbacks). It is
 * written for this project, with no library: an XML-RPC encoder for the
 * three SAMP types (string, list, map) and a decoder for what hubs answer.
 * The page's Content-Security-Policy must allow connect-src to the hub.
 */
(function () {
  "use strict";

  const HUB_URL = "http://localhost:21012/";

  class SampError extends Error {
    constructor(message, kind) {
      super(message);
      this.name = "SampError";
      this.kind = kind; // "no-hub", "refused", "fault"
    }
  }

  /* ---------------------------------------------------------------- XML-RPC */

  function escapeXml(text) {
    return String(text).replace(/[<>&'"]/g, (c) => (
      { "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" }[c]
    ));
  }

  /* SAMP values are strings, lists and maps only (SAMP 1.3, section 3.3). */
  function encodeValue(value) {
    if (Array.isArray(value)) {
      return `<value><array><data>${value.map(encodeValue).join("")}</data></array></value>`;
    }
    if (value !== null && typeof value === "object") {
      const members = Object.entries(value).map(
        ([name, item]) => `<member><name>${escapeXml(name)}</name>${encodeValue(item)}</member>`,
      );
      return `<value><struct>${members.join("")}</struct></value>`;
    }
    return `<value><string>${escapeXml(value === undefined || value === null ? "" : value)}</string></value>`;
  }

  function encodeCall(method, params) {
    const encoded = params.map((param) => `<param>${encodeValue(param)}</param>`).join("");
    return `<?xml version="1.0"?><methodCall><methodName>${escapeXml(method)}</methodName>` +
      `<params>${encoded}</params></methodCall>`;
  }

  function childElements(node) {
    return Array.from(node.childNodes).filter((child) => child.nodeType === 1);
  }

  function decodeValue(valueNode) {
    const [typed] = childElements(valueNode);
    if (!typed) return valueNode.textContent; // a bare <value>text</value> is a string
    switch (typed.localName) {
      case "array": {
        const data = childElements(typed).find((child) => child.localName === "data");
        return data ? childElements(data).map(decodeValue) : [];
      }
      case "struct": {
        const map = {};
        for (const member of childElements(typed)) {
          const name = childElements(member).find((child) => child.localName === "name");
          const value = childElements(member).find((child) => child.localName === "value");
          if (name && value) map[name.textContent] = decodeValue(value);
        }
        return map;
      }
      case "int":
      case "i4":
      case "i8":
      case "double":
        return Number(typed.textContent);
      case "boolean":
        return typed.textContent.trim() === "1";
      case "nil":
        return null;
      default:
        return typed.textContent;
    }
  }

  function decodeResponse(text) {
    const documentNode = new DOMParser().parseFromString(text, "application/xml");
    const root = documentNode.documentElement;
    if (!root || root.localName !== "methodResponse") {
      throw new SampError("the SAMP hub's answer is not an XML-RPC response", "fault");
    }
    const fault = root.getElementsByTagName("fault")[0];
    if (fault) {
      const detail = decodeValue(childElements(fault)[0]);
      const reason = detail && detail.faultString ? detail.faultString : "unknown fault";
      throw new SampError(reason, /reject|denied|refus/i.test(reason) ? "refused" : "fault");
    }
    const value = root.getElementsByTagName("value")[0];
    return value ? decodeValue(value) : null;
  }

  async function call(method, params, options = {}) {
    let response;
    try {
      response = await fetch(HUB_URL, {
        method: "POST",
        headers: { "Content-Type": "text/xml" },
        body: encodeCall(method, params),
        keepalive: Boolean(options.keepalive),
      });
    } catch (error) {
      throw new SampError(
        "no SAMP hub answered at localhost:21012; start TOPCAT or Aladin (with its Web " +
        "Profile switched on), then try again",
        "no-hub",
      );
    }
    const text = await response.text();
    if (!response.ok) {
      throw new SampError(`the SAMP hub answered HTTP ${response.status}`, "fault");
    }
    return decodeResponse(text);
  }

  /* ----------------------------------------------------------------- client */

  class SampClient {
    constructor(metadata) {
      this.metadata = metadata; // samp.name, samp.description.text, samp.icon.url, ...
      this.privateKey = null;
      this.registering = null;
      window.addEventListener("pagehide", () => this.unregister(true));
    }

    get registered() {
      return this.privateKey !== null;
    }

    /* Register once (the hub asks the user); later calls reuse the registration. */
    async register() {
      if (this.privateKey) return;
      if (!this.registering) {
        this.registering = (async () => {
          const answer = await call("samp.webhub.register", [{ "samp.name": this.metadata["samp.name"] }]);
          const key = answer && answer["samp.private-key"];
          if (!key) throw new SampError("the SAMP hub did not register this page", "fault");
          this.privateKey = key;
          await call("samp.webhub.declareMetadata", [key, this.metadata]);
        })().finally(() => {
          this.registering = null;
        });
      }
      await this.registering;
    }

    async hubCall(method, ...params) {
      await this.register();
      try {
        return await call(`samp.webhub.${method}`, [this.privateKey, ...params]);
      } catch (error) {
        if (error.kind === "fault" && /private.key|expired|invalid|unknown client/i.test(error.message)) {
          this.privateKey = null; // the hub restarted or dropped us: register again, once
          await this.register();
          return call(`samp.webhub.${method}`, [this.privateKey, ...params]);
        }
        throw error;
      }
    }

    /* The names of the clients that subscribe to an MType. */
    async listeners(mtype) {
      const subscribed = await this.hubCall("getSubscribedClients", mtype);
      const names = [];
      for (const id of Object.keys(subscribed || {})) {
        const metadata = await this.hubCall("getMetadata", id).catch(() => ({}));
        names.push((metadata && metadata["samp.name"]) || id);
      }
      return names;
    }

    /* Send a notification to every subscribed client; resolve to their names. */
    async notifyAll(mtype, params) {
      const names = await this.listeners(mtype);
      if (names.length === 0) return names;
      await this.hubCall("notifyAll", { "samp.mtype": mtype, "samp.params": params });
      return names;
    }

    unregister(leaving) {
      const key = this.privateKey;
      this.privateKey = null;
      if (key) call("samp.webhub.unregister", [key], { keepalive: leaving }).catch(() => {});
    }
  }

  window.VosimSamp = { SampClient, SampError, HUB_URL };
})();
