/* The similarity page (/similar?ID=...): ranking, selection, quick select, virtual scrolling.
 *
 * The server renders the original image and hands over the selection it was
 * opened with (the JSON in #page-config). This script asks the similarity
 * service for the ranking of the whole selection, draws it, and asks again
 * after every click: one request with all selected IDs, the newest request
 * wins. The URL always names the selection, so a page can be shared.
 *
 * The grid is virtually scrolled: every tile has the same size, the grid
 * element is as tall as all rows together (it is the spacer), and only the
 * rows in or near the viewport exist in the DOM, as absolutely placed tiles
 * recycled from a pool. Thousands of results thus cost a few dozen nodes.
 */
(function () {
  "use strict";

  const OVERSCAN_ROWS = 2;
  const KIND_LABELS = { continuum: "continuum", peak_flux: "peak-flux" };

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const original = config.selection[0].obs_publisher_did;
  const cards = new Map(config.selection.map((card) => [card.obs_publisher_did, card]));

  const gridElement = document.getElementById("results");
  const strip = document.getElementById("selection-strip");
  const selectionCount = document.getElementById("selection-count");
  const clearButton = document.getElementById("clear-selection");
  const quickRow = document.getElementById("quick-select-row");
  const resultCount = document.getElementById("result-count");
  const message = document.getElementById("message");
  const shareLink = document.getElementById("share-link");
  const toolbar = document.querySelector(".toolbar");

  const state = {
    selection: config.selection.map((card) => card.obs_publisher_did),
    imageKind: config.image_kind,
    request: null,
  };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function describe(card) {
    const kind = KIND_LABELS[card.image_kind || state.imageKind] || "";
    return `${card.target_name || "unnamed target"}, band ${card.band_list || "unknown"}, ${kind} image`;
  }

  /* ---------------------------------------------------------------- grid */

  class VirtualGrid {
    constructor(container, onToggle) {
      this.container = container;
      this.results = [];
      this.selected = new Set();
      this.live = new Map(); // result index -> tile in the DOM
      this.pool = [];
      this.first = 0;
      this.last = -1;
      const style = getComputedStyle(container);
      this.tileWidth = parseFloat(style.getPropertyValue("--tile-w"));
      this.tileHeight = parseFloat(style.getPropertyValue("--tile-h"));
      this.gap = parseFloat(style.getPropertyValue("--tile-gap"));
      this.rowPitch = this.tileHeight + this.gap;
      this.columns = 1;
      this.frameRequested = false;

      container.addEventListener("click", (event) => {
        const pick = event.target.closest(".tile-pick");
        if (pick) onToggle(pick.parentNode.dataset.did);
      });
      // A recycled tile hides its image until the new preview has arrived.
      const loaded = (event) => {
        const tile = event.target.closest && event.target.closest(".tile");
        if (tile) tile.classList.remove("loading");
      };
      container.addEventListener("load", loaded, true);
      container.addEventListener("error", loaded, true);
      window.addEventListener("scroll", () => this.schedule(), { passive: true });
      new ResizeObserver(() => this.layout()).observe(container);
    }

    setResults(results) {
      this.results = results;
      this.layout(true);
    }

    setSelected(selected) {
      this.selected = selected;
      for (const tile of this.live.values()) this.markSelected(tile);
    }

    layout(refill = false) {
      const width = this.container.clientWidth;
      const pitch = this.tileWidth + this.gap;
      const columns = Math.max(1, Math.floor((width + this.gap) / pitch));
      const rows = Math.ceil(this.results.length / columns);
      const moved = columns !== this.columns;
      this.columns = columns;
      this.container.style.height = `${Math.max(0, rows * this.rowPitch - this.gap)}px`;
      this.render(refill || moved);
    }

    schedule() {
      if (this.frameRequested) return;
      this.frameRequested = true;
      requestAnimationFrame(() => {
        this.frameRequested = false;
        this.render(false);
      });
    }

    /* Put in the DOM exactly the tiles of the rows in (or near) the viewport. */
    render(refill) {
      const count = this.results.length;
      const above = -this.container.getBoundingClientRect().top;
      const firstRow = Math.max(0, Math.floor(above / this.rowPitch) - OVERSCAN_ROWS);
      const lastRow = Math.floor((above + window.innerHeight) / this.rowPitch) + OVERSCAN_ROWS;
      const first = Math.min(count, firstRow * this.columns);
      const last = Math.min(count - 1, (lastRow + 1) * this.columns - 1);
      if (!refill && first === this.first && last === this.last) return;
      for (const [index, tile] of this.live) {
        if (refill || index < first || index > last) {
          this.live.delete(index);
          this.pool.push(tile);
        }
      }
      const added = document.createDocumentFragment();
      for (let index = first; index <= last; index += 1) {
        if (this.live.has(index)) continue;
        const tile = this.pool.pop() || this.createTile();
        this.fill(tile, this.results[index], index);
        if (!tile.isConnected) added.appendChild(tile);
        this.live.set(index, tile);
      }
      this.container.appendChild(added);
      for (const tile of this.pool) tile.remove();
      this.first = first;
      this.last = last;
    }

    createTile() {
      const tile = element("div", "tile");
      tile.setAttribute("role", "listitem");
      const pick = element("button", "tile-pick");
      pick.type = "button";
      const thumb = element("span", "tile-thumb");
      const image = element("img");
      image.width = 160;
      image.height = 160;
      image.decoding = "async";
      const rank = element("span", "tile-rank");
      const overlay = element("span", "tile-overlay");
      const overlayTarget = element("span", "overlay-target");
      const overlayBand = element("span");
      const overlayCategory = element("span");
      const overlaySimilarity = element("span");
      overlay.append(overlayTarget, overlayBand, overlayCategory, overlaySimilarity);
      thumb.append(image, rank, overlay);
      const target = element("span", "tile-target");
      const meta = element("span", "tile-meta");
      const band = element("span", "tile-band");
      const similarity = element("span", "tile-similarity");
      meta.append(band, similarity);
      pick.append(thumb, target, meta);
      const links = element("span", "tile-links");
      const datalink = element("a", "", "DataLink");
      const fits = element("a", "", "FITS");
      fits.setAttribute("download", "");
      links.append(datalink, fits);
      tile.append(pick, links);
      tile.parts = {
        pick, image, rank, target, band, similarity, datalink, fits,
        overlayTarget, overlayBand, overlayCategory, overlaySimilarity,
      };
      return tile;
    }

    fill(tile, result, index) {
      const parts = tile.parts;
      const name = result.target_name || "Unnamed target";
      const band = result.band_list || "?";
      const category = result.scientific_category || "no category";
      const similarity = result.similarity.toFixed(3);
      tile.dataset.did = result.obs_publisher_did;
      tile.dataset.rank = result.rank;
      tile.style.transform = `translate(${(index % this.columns) * (this.tileWidth + this.gap)}px, ${Math.floor(index / this.columns) * this.rowPitch}px)`;
      if (parts.image.getAttribute("src") !== result.preview_url) {
        tile.classList.add("loading");
        parts.image.src = result.preview_url;
      }
      parts.image.alt = `Preview of ${describe(result)}`;
      parts.rank.textContent = `#${result.rank}`;
      parts.overlayTarget.textContent = name;
      parts.overlayBand.textContent = `Band ${band} · ${KIND_LABELS[state.imageKind] || state.imageKind}`;
      parts.overlayCategory.textContent = category;
      parts.overlaySimilarity.textContent = `Similarity ${similarity}`;
      parts.target.textContent = name;
      parts.band.textContent = `Band ${band}`;
      parts.similarity.textContent = similarity;
      parts.pick.title = `${name}\nBand ${band} · ${category}\nSimilarity ${similarity}`;
      parts.datalink.href = result.datalink_url;
      parts.datalink.title = `DataLink of ${name}: preview, file and services`;
      parts.datalink.setAttribute("aria-label", `DataLink of ${name}`);
      parts.fits.href = result.file_url;
      parts.fits.title = `FITS file of ${name}`;
      parts.fits.setAttribute("aria-label", `FITS file of ${name}`);
      this.markSelected(tile);
    }

    markSelected(tile) {
      const selected = this.selected.has(tile.dataset.did);
      tile.classList.toggle("is-selected", selected);
      tile.parts.pick.setAttribute("aria-pressed", selected ? "true" : "false");
    }
  }

  const grid = new VirtualGrid(gridElement, toggle);

  /* ----------------------------------------------------------- selection */

  function pageUrl(selection) {
    const query = selection.map((did) => `ID=${encodeURIComponent(did)}`).join("&");
    return `${config.page_path}?${query}`;
  }

  function showSelection() {
    const selected = new Set(state.selection);
    grid.setSelected(selected);
    selectionCount.textContent = String(state.selection.length);
    clearButton.hidden = state.selection.length < 2;
    const chips = document.createDocumentFragment();
    for (const did of state.selection) {
      const card = cards.get(did) || { obs_publisher_did: did };
      const name = card.target_name || "Unnamed target";
      const chip = element("li", did === original ? "chip chip-original" : "chip");
      chip.dataset.did = did;
      chip.title = `${name} · band ${card.band_list || "?"} · ${card.scientific_category || "no category"}`;
      const image = element("img");
      image.src = card.preview_url;
      image.alt = "";
      image.width = 40;
      image.height = 40;
      if (did === original) {
        chip.append(image, element("span", "chip-label", name));
      } else {
        // A selected image is a pressed toggle: clicking it again deselects it.
        const pick = element("button", "chip-pick");
        pick.type = "button";
        pick.setAttribute("aria-pressed", "true");
        pick.setAttribute("aria-label", `${name}, selected; press to remove it from the selection`);
        pick.append(image, element("span", "chip-label", name), element("span", "chip-remove", "×"));
        pick.addEventListener("click", () => toggle(did));
        chip.append(pick);
        chip.title += "\nClick to remove it from the selection";
      }
      chips.append(chip);
    }
    strip.replaceChildren(chips);
    const url = pageUrl(state.selection);
    history.replaceState(null, "", url);
    shareLink.href = url;
  }

  function toggle(did) {
    if (did === original) return;
    const next = state.selection.includes(did)
      ? state.selection.filter((other) => other !== did)
      : [...state.selection, did];
    select(next);
  }

  async function select(next) {
    const previous = state.selection;
    state.selection = next;
    showSelection();
    if ((await rank()) === "failed") {
      state.selection = previous;
      showSelection();
    }
  }

  clearButton.addEventListener("click", () => select([original]));

  /* ------------------------------------------------------------- ranking */

  function showError(text) {
    message.textContent = text;
    message.hidden = false;
  }

  async function rank() {
    if (state.request) state.request.abort();
    const request = new AbortController();
    state.request = request;
    const params = new URLSearchParams();
    for (const did of state.selection) params.append("ID", did);
    params.set("MAXREC", String(config.maxrec));
    params.set("RESPONSEFORMAT", "application/json");
    params.set("QUICKSELECT", "true");
    gridElement.classList.add("busy");
    gridElement.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      response = await fetch(`${config.service}?${params}`, {
        signal: request.signal,
        headers: { Accept: "application/json" },
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (error.name === "AbortError") return "superseded";
      if (state.request === request) finish();
      showError(`The similarity service could not be reached (${error.message}). Try again.`);
      return "failed";
    }
    if (state.request !== request) return "superseded";
    finish();
    if (!response.ok || !body || !Array.isArray(body.results)) {
      const reason = body && body.error ? body.error : `HTTP ${response.status}`;
      showError(`The similarity service could not rank this selection: ${reason}`);
      return "failed";
    }
    message.hidden = true;
    show(body);
    return "ranked";
  }

  function finish() {
    state.request = null;
    gridElement.classList.remove("busy");
    gridElement.setAttribute("aria-busy", "false");
  }

  function show(body) {
    state.imageKind = body.image_kind || state.imageKind;
    for (const result of body.results) cards.set(result.obs_publisher_did, result);
    const results = body.results;
    const kind = KIND_LABELS[state.imageKind] || state.imageKind;
    const by = state.selection.length === 1 ? "the original image" : `${state.selection.length} selected images`;
    const total = typeof body.total === "number" ? body.total : results.length;
    resultCount.textContent = results.length === 0
      ? `No similar ${kind} images are public yet.`
      : `${total.toLocaleString("en")} similar ${kind} images` +
        (results.length < total ? ` (the first ${results.length.toLocaleString("en")} shown)` : "") +
        `, ranked by ${by}`;
    gridElement.dataset.total = String(total);
    gridElement.dataset.count = String(results.length);
    // Newly ranked: show the best ones, not whatever row the user had scrolled to.
    const top = gridElement.getBoundingClientRect().top + window.scrollY - toolbar.offsetHeight - 16;
    if (window.scrollY > top) window.scrollTo(0, top);
    grid.setResults(results);
    showQuickSelect(body.quick_select || []);
    showSelection();
  }

  /* --------------------------------------------------------- quick select */

  function showQuickSelect(groups) {
    const items = document.createDocumentFragment();
    groups.forEach((group, position) => {
      const card = cards.get(group.representative) || { obs_publisher_did: group.representative };
      const name = card.target_name || "Unnamed target";
      const item = element("li");
      const pick = element("button", "quick-pick");
      pick.type = "button";
      pick.dataset.did = group.representative;
      pick.title = `Group ${position + 1}, represented by ${name} (band ${card.band_list || "?"}): ` +
        `select its ${group.members.length} closest images`;
      const image = element("img");
      image.src = card.preview_url;
      image.alt = `Preview of ${describe(card)}`;
      image.width = 102;
      image.height = 102;
      pick.append(image, element("span", "quick-label", name),
        element("span", "quick-size", `+${group.members.length} images`));
      pick.addEventListener("click", () => {
        const added = group.members.filter((did) => !state.selection.includes(did));
        select([...state.selection, ...added]);
      });
      item.append(pick);
      items.append(item);
    });
    quickRow.replaceChildren(items);
    quickRow.setAttribute("aria-busy", "false");
  }

  showSelection();
  rank();
})();
