/* The similarity page (/similar?ID=...): ranking, selection, quick select, virtual scrolling.
 *
 * The server renders the original image and hands over the selection it was
 * opened with (the JSON in #page-config). This script asks the similarity
 * service for the ranking of the whole selection and draws it; every click
 * asks again, with all selected IDs in one request, and the newest request
 * wins. The URL always names the selection, so a page can be shared.
 *
 * The grid is virtually scrolled: every tile has the same size, the grid
 * element is as tall as the rows of the whole ranking (it is the spacer),
 * and only the rows in or near the viewport exist in the DOM, as absolutely
 * placed tiles recycled from a pool. The ranking arrives in pages of
 * config.maxrec rows (MAXREC and OFFSET): the first with the quick-select
 * groups, the others when scrolling comes near them. Thousands of results
 * thus cost a few dozen DOM nodes and one request per page scrolled to.
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
    request: null, // AbortController of the ranking request in flight
  };

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function kindLabel(kind) {
    return KIND_LABELS[kind] || kind || "";
  }

  function describe(card) {
    return `${card.target_name || "unnamed target"}, band ${card.band_list || "unknown"}, ` +
      `${kindLabel(card.image_kind || state.imageKind)} image`;
  }

  function similarityService(selection, offset, quickSelect) {
    const params = new URLSearchParams();
    for (const did of selection) params.append("ID", did);
    params.set("MAXREC", String(config.maxrec));
    if (offset) params.set("OFFSET", String(offset));
    params.set("RESPONSEFORMAT", "application/json");
    if (quickSelect) params.set("QUICKSELECT", "true");
    return `${config.service}?${params}`; // relative to the page: "similarity/sync"
  }

  /* Fetch a ranking page; resolve to the JSON body, or throw an Error with the service's words. */
  async function fetchRanking(url, signal) {
    let response;
    try {
      response = await fetch(url, { signal, headers: { Accept: "application/json" } });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error(`the similarity service could not be reached (${error.message})`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !Array.isArray(body.results)) {
      throw new Error(body && body.error ? body.error : `HTTP ${response.status}`);
    }
    return body;
  }

  /* -------------------------------------------------------------- ranking */

  /* One ranking of one selection: its total, the rows loaded so far, and more on demand. */
  class Ranking {
    constructor(selection, first) {
      this.selection = selection;
      this.total = typeof first.total === "number" ? first.total : first.results.length;
      this.rows = [];
      this.pages = new Set([0]);
      this.loaded = 0;
      this.controller = new AbortController();
      this.add(first.results);
    }

    add(results) {
      for (const result of results) {
        if (this.rows[result.rank - 1] === undefined) this.loaded += 1;
        this.rows[result.rank - 1] = result;
        cards.set(result.obs_publisher_did, result);
      }
    }

    get(index) {
      return this.rows[index];
    }

    /* Ask for the pages that hold rows first..last and are neither loaded nor on their way. */
    require(first, last, onLoaded) {
      const size = config.maxrec;
      const lastPage = Math.floor(Math.min(last, this.total - 1) / size);
      for (let page = Math.floor(first / size); page <= lastPage; page += 1) {
        if (this.pages.has(page)) continue;
        this.pages.add(page);
        const url = similarityService(this.selection, page * size, false);
        fetchRanking(url, this.controller.signal).then(
          (body) => {
            this.add(body.results);
            onLoaded(this);
          },
          (error) => {
            if (error.name === "AbortError") return;
            this.pages.delete(page); // scrolling there again retries
            showError(`More results could not be loaded: ${error.message}`);
          },
        );
      }
    }

    abandon() {
      this.controller.abort();
    }
  }

  /* ----------------------------------------------------------------- grid */

  class VirtualGrid {
    constructor(container, onToggle) {
      this.container = container;
      this.ranking = null;
      this.selected = new Set();
      this.live = new Map(); // index in the ranking -> tile in the DOM
      this.pool = [];
      this.first = 0;
      this.last = -1;
      const style = getComputedStyle(container);
      this.tileWidth = parseFloat(style.getPropertyValue("--tile-w"));
      this.tileHeight = parseFloat(style.getPropertyValue("--tile-h"));
      this.gap = parseFloat(style.getPropertyValue("--tile-gap"));
      this.rowPitch = this.tileHeight + this.gap;
      this.columns = 1;
      this.width = -1;
      this.frameRequested = false;

      container.addEventListener("click", (event) => {
        const pick = event.target.closest(".tile-pick");
        if (pick && pick.parentNode.dataset.did) onToggle(pick.parentNode.dataset.did);
      });
      // A recycled tile hides its image until the new preview has arrived.
      const loaded = (event) => {
        const tile = event.target.closest && event.target.closest(".tile");
        if (tile) tile.classList.remove("loading");
      };
      container.addEventListener("load", loaded, true);
      container.addEventListener("error", loaded, true);
      window.addEventListener("scroll", () => this.schedule(), { passive: true });
      // Only a new width changes the columns; the height is ours (the spacer).
      new ResizeObserver(() => {
        if (container.clientWidth !== this.width) this.layout(false);
      }).observe(container);
    }

    show(ranking) {
      this.ranking = ranking;
      this.container.dataset.total = String(ranking.total);
      this.container.dataset.count = String(ranking.loaded);
      this.layout(true);
    }

    /* Rows arrived for the ranking on show: fill the tiles that waited for them. */
    refresh(ranking) {
      if (ranking !== this.ranking) return;
      this.container.dataset.count = String(ranking.loaded);
      this.render(true);
    }

    setSelected(selected) {
      this.selected = selected;
      for (const tile of this.live.values()) this.markSelected(tile);
    }

    get count() {
      return this.ranking ? this.ranking.total : 0;
    }

    layout(refill) {
      const width = this.container.clientWidth;
      const pitch = this.tileWidth + this.gap;
      const columns = Math.max(1, Math.floor((width + this.gap) / pitch));
      const rows = Math.ceil(this.count / columns);
      const moved = columns !== this.columns;
      this.width = width;
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

    /* Put in the DOM exactly the tiles of the rows in (or near) the viewport.
     * A tile keeps its place while it stays in range (refill only changes its
     * content), so the keyboard focus stays where it was after a re-ranking. */
    render(refill) {
      const count = this.count;
      const above = -this.container.getBoundingClientRect().top;
      const firstRow = Math.max(0, Math.floor(above / this.rowPitch) - OVERSCAN_ROWS);
      const lastRow = Math.floor((above + window.innerHeight) / this.rowPitch) + OVERSCAN_ROWS;
      const first = Math.min(count, firstRow * this.columns);
      const last = Math.min(count - 1, (lastRow + 1) * this.columns - 1);
      if (!refill && first === this.first && last === this.last) return;
      for (const [index, tile] of this.live) {
        if (index < first || index > last) {
          this.live.delete(index);
          this.pool.push(tile);
        }
      }
      const added = document.createDocumentFragment();
      for (let index = first; index <= last; index += 1) {
        const placed = this.live.get(index);
        if (placed) {
          if (refill) this.fill(placed, index);
          continue;
        }
        const tile = this.pool.pop() || this.createTile();
        this.fill(tile, index);
        if (!tile.isConnected) added.appendChild(tile);
        this.live.set(index, tile);
      }
      this.container.appendChild(added);
      for (const tile of this.pool) tile.remove();
      this.first = first;
      this.last = last;
      if (this.ranking && last >= first) {
        // Ask early for the rows two screens further on, so scrolling rarely waits.
        const ahead = last + 2 * (last - first + 1);
        this.ranking.require(first, ahead, (ranking) => this.refresh(ranking));
      }
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

    fill(tile, index) {
      const column = index % this.columns;
      const row = Math.floor(index / this.columns);
      tile.style.transform =
        `translate(${column * (this.tileWidth + this.gap)}px, ${row * this.rowPitch}px)`;
      const result = this.ranking.get(index);
      if (result === undefined) {
        this.fillPending(tile, index);
        return;
      }
      const parts = tile.parts;
      const name = result.target_name || "Unnamed target";
      const band = result.band_list || "?";
      const category = result.scientific_category || "no category";
      const similarity = typeof result.similarity === "number" ? result.similarity.toFixed(3) : "–";
      tile.classList.remove("pending");
      tile.dataset.did = result.obs_publisher_did;
      tile.dataset.rank = String(result.rank);
      if (!result.preview_url) {
        parts.image.removeAttribute("src");
      } else if (parts.image.getAttribute("src") !== result.preview_url) {
        tile.classList.add("loading");
        parts.image.src = result.preview_url;
      }
      parts.image.alt = `Preview of ${describe(result)}`;
      parts.rank.textContent = `#${result.rank}`;
      parts.overlayTarget.textContent = name;
      parts.overlayBand.textContent = `Band ${band} · ${kindLabel(state.imageKind)}`;
      parts.overlayCategory.textContent = category;
      parts.overlaySimilarity.textContent = `Similarity ${similarity}`;
      parts.target.textContent = name;
      parts.band.textContent = `Band ${band}`;
      parts.similarity.textContent = similarity;
      parts.pick.disabled = false;
      parts.pick.title = `${name}\nBand ${band} · ${category}\nSimilarity ${similarity}`;
      parts.datalink.href = result.datalink_url;
      parts.datalink.title = `DataLink of ${name}: preview, file and services`;
      parts.datalink.setAttribute("aria-label", `DataLink of ${name}`);
      parts.fits.hidden = !result.file_url;
      if (result.file_url) parts.fits.href = result.file_url;
      parts.fits.title = `FITS file of ${name}`;
      parts.fits.setAttribute("aria-label", `FITS file of ${name}`);
      this.markSelected(tile);
    }

    /* A row not loaded yet: an empty tile of the same size, filled when its page arrives. */
    fillPending(tile, index) {
      const parts = tile.parts;
      tile.classList.add("pending");
      tile.classList.remove("loading", "is-selected");
      delete tile.dataset.did;
      tile.dataset.rank = String(index + 1);
      parts.image.removeAttribute("src");
      parts.image.alt = "";
      parts.rank.textContent = `#${index + 1}`;
      for (const name of ["overlayTarget", "overlayBand", "overlayCategory", "overlaySimilarity",
        "band", "similarity"]) {
        parts[name].textContent = "";
      }
      parts.target.textContent = "Loading…";
      parts.pick.disabled = true;
      parts.pick.removeAttribute("title");
      parts.pick.removeAttribute("aria-pressed");
      parts.datalink.removeAttribute("href");
      parts.fits.removeAttribute("href");
    }

    markSelected(tile) {
      if (tile.classList.contains("pending")) return;
      const selected = this.selected.has(tile.dataset.did);
      tile.classList.toggle("is-selected", selected);
      tile.parts.pick.setAttribute("aria-pressed", selected ? "true" : "false");
    }
  }

  const grid = new VirtualGrid(gridElement, toggle);

  /* ------------------------------------------------------------ selection */

  /* The page's URL for a selection, relative to the page itself (config.page_path is
   * "similar"), so that it stays under whatever prefix the page was served at. */
  function pageUrl(selection) {
    const query = selection.map((did) => `ID=${encodeURIComponent(did)}`).join("&");
    return `${config.page_path}?${query}`;
  }

  function showSelection() {
    grid.setSelected(new Set(state.selection));
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
      if (card.preview_url) image.src = card.preview_url;
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
    history.replaceState(null, "", pageUrl(state.selection));
    shareLink.href = window.location.href;
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

  /* ------------------------------------------------- asking for a ranking */

  function showError(text) {
    message.textContent = text;
    message.hidden = false;
  }

  function setBusy(busy) {
    gridElement.classList.toggle("busy", busy);
    gridElement.setAttribute("aria-busy", busy ? "true" : "false");
  }

  /* Rank the current selection: first page and quick select; "ranked", "failed" or "superseded". */
  async function rank() {
    if (state.request) state.request.abort();
    const request = new AbortController();
    state.request = request;
    const selection = state.selection.slice();
    setBusy(true);
    let body;
    try {
      body = await fetchRanking(similarityService(selection, 0, true), request.signal);
    } catch (error) {
      if (error.name === "AbortError") return "superseded";
      state.request = null;
      setBusy(false);
      showError(`The similarity service could not rank this selection: ${error.message}`);
      if (!grid.ranking) resultCount.textContent = "No ranking to show.";
      return "failed";
    }
    if (state.request !== request) return "superseded";
    state.request = null;
    message.hidden = true;
    show(selection, body);
    setBusy(false);
    return "ranked";
  }

  function show(selection, body) {
    if (grid.ranking) grid.ranking.abandon();
    state.imageKind = body.image_kind || state.imageKind;
    const ranking = new Ranking(selection, body);
    const kind = kindLabel(state.imageKind);
    const by = selection.length === 1 ? "the original image" : `${selection.length} selected images`;
    resultCount.textContent = ranking.total === 0
      ? `No other public ${kind} image can be compared with this one yet.`
      : `${ranking.total.toLocaleString("en")} similar ${kind} images, ranked by ${by}`;
    // Newly ranked: show the best ones, not whatever row the user had scrolled to.
    const top = gridElement.getBoundingClientRect().top + window.scrollY - toolbar.offsetHeight - 16;
    if (window.scrollY > top) window.scrollTo(0, top);
    grid.show(ranking);
    showQuickSelect(body.quick_select || []);
    showSelection();
  }

  /* -------------------------------------------------------- quick select */

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
        `select the ${group.members.length} images closest to it`;
      const image = element("img");
      if (card.preview_url) image.src = card.preview_url;
      image.alt = `Preview of ${describe(card)}`;
      image.width = 90;
      image.height = 90;
      pick.append(image, element("span", "quick-label", name),
        element("span", "quick-size", `+${group.members.length} images`));
      pick.addEventListener("click", () => {
        const added = group.members.filter((did) => !state.selection.includes(did));
        select([...state.selection, ...added]);
      });
      item.append(pick);
      items.append(item);
    });
    if (groups.length === 0) {
      items.append(element("li", "quick-empty", "No groups for this ranking: too few similar images."));
    }
    quickRow.replaceChildren(items);
    quickRow.setAttribute("aria-busy", "false");
  }

  showSelection();
  rank();
})();
