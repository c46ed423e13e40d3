/* The similarity page (/similar?ID=...): ranking, selection, quick select, virtual scrolling,
 * "less like this", other targets only, search by an uploaded FITS file, export and SAMP.
 *
 * The server renders the original image and hands over the state the page
 * was opened with (the JSON in #page-config): the selected images (ID, the
 * first one the original), those marked "less like this" (NOT_ID) and the
 * "other targets only" radius (MIN_SEPARATION). This script asks the
 * similarity service for the ranking of that state and draws it; every
 * click asks again, with the whole state in one request, and the newest
 * request wins. The URL always names the state, so a page can be shared.
 *
 * A search can also start from the user's own FITS file (dropped on the
 * page or picked): it is posted to the service as IMAGE, the cut-out the
 * service made is drawn as the original image with what it decided, and
 * each refinement posts the file again with the selected IDs (the service
 * keeps nothing between requests).
 *
 * The grid is virtually scrolled: every tile has the same size, the grid
 * element is as tall as the rows of the whole ranking (it is the spacer),
 * and only the rows in or near the viewport exist in the DOM, as absolutely
 * placed tiles recycled from a pool. The ranking arrives in pages of
 * config.maxrec rows (MAXREC and OFFSET): the first with the quick-select
 * groups, the others when scrolling comes near them. Thousands of results
 * thus cost a few dozen DOM nodes and one request per page scrolled to.
 *
 * Everything runs under a Content-Security-Policy of default-src 'self': no
 * inline script or style, no eval, no data: images (the uploaded cut-out is
 * drawn on a canvas).
 */
(function () {
  "use strict";

  const OVERSCAN_ROWS = 2;
  const PROGRESS_DELAY_MS = 300; // a request that takes longer shows progress
  const KIND_LABELS = { continuum: "continuum", peak_flux: "peak-flux" };
  const KIND_TITLES = { continuum: "Continuum", peak_flux: "Peak flux (moment 8)" };
  const LESS_KEYS = new Set(["n", "N", "-", "Subtract"]);
  const JSON_TYPE = "application/json";

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const cards = new Map();
  for (const card of [...config.selection, ...config.excluded]) cards.set(card.obs_publisher_did, card);

  const $ = (id) => document.getElementById(id);
  const gridElement = $("results");
  const strip = $("selection-strip");
  const stripFrame = $("strip-frame");
  const stripBack = $("strip-back");
  const stripOn = $("strip-on");
  const selectionCount = $("selection-count");
  const clearButton = $("clear-selection");
  const quickRow = $("quick-select-row");
  const resultCount = $("result-count");
  const hiddenCount = $("hidden-count");
  const hiddenText = $("hidden-text");
  const showHidden = $("show-hidden");
  const message = $("message");
  const gridNote = $("grid-note");
  const progress = $("progress");
  const progressText = $("progress-text");
  const progressBar = $("progress-bar");
  const shareLink = $("share-link");
  const shareNote = $("share-note");
  const otherTargets = $("other-targets");
  const separationLabel = $("separation-value");
  const exportVotable = $("export-votable");
  const exportCsv = $("export-csv");
  const tapQuery = $("tap-query");
  const tapAdql = $("tap-adql");
  const adqlText = $("adql-text");
  const tapNote = $("tap-note");
  const sampTable = $("samp-table");
  const sampImage = $("samp-image");
  const sampChoice = $("samp-image-choice");
  const sampStatus = $("samp-status");
  const uploadButton = $("upload-button");
  const uploadInput = $("upload-input");
  const dropOverlay = $("drop-overlay");
  const toolbar = document.querySelector(".toolbar");

  const state = {
    origin: config.selection.length
      ? { did: config.selection[0].obs_publisher_did }
      : null, // { did } for an archive image, { file, described } for an upload
    selected: config.selection.slice(1).map((card) => card.obs_publisher_did),
    excluded: config.excluded.map((card) => card.obs_publisher_did),
    imageKind: config.image_kind,
    minSeparation: config.min_separation,
    onSeparation: config.min_separation > 0 ? config.min_separation : config.default_min_separation,
    mode: "more",
    modelId: null,
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

  function isUpload() {
    return Boolean(state.origin && state.origin.file);
  }

  /* The IDs a request sends: the original image (unless uploaded), then the selected ones. */
  function selectionIds() {
    if (!state.origin) return [];
    return isUpload() ? state.selected.slice() : [state.origin.did, ...state.selected];
  }

  /* ------------------------------------------------------- the service */

  /* One query to the service: what it ranks against, fixed for a Ranking's lifetime. */
  function currentQuery() {
    return {
      ids: selectionIds(),
      excluded: state.excluded.slice(),
      minSeparation: state.minSeparation,
      file: isUpload() ? state.origin.file : null,
    };
  }

  function queryParams(query, { offset = 0, maxrec = config.maxrec, quickSelect = false, format = JSON_TYPE } = {}) {
    const params = [];
    for (const did of query.ids) params.push(["ID", did]);
    for (const did of query.excluded) params.push(["NOT_ID", did]);
    if (query.minSeparation > 0) params.push(["MIN_SEPARATION", String(query.minSeparation)]);
    params.push(["MAXREC", String(maxrec)]);
    if (offset) params.push(["OFFSET", String(offset)]);
    if (format) params.push(["RESPONSEFORMAT", format]);
    if (quickSelect) params.push(["QUICKSELECT", "true"]);
    return params;
  }

  function serviceUrl(query, options) {
    return `${config.service}?${new URLSearchParams(queryParams(query, options))}`; // relative
  }

  function serviceError(status, body) {
    if (body && body.error) return new Error(body.error);
    return new Error(status ? `the similarity service answered HTTP ${status}` : "no answer");
  }

  /* A URL longer than this (many selected images) would not reach the service: asked by POST. */
  function tooLong(url) {
    return url.length > config.max_url_length;
  }

  /* Ask for one page of a ranking; resolve to the JSON body, or throw the service's words.
   * A long selection goes as a POSTed form; an upload by XMLHttpRequest, which reports
   * how much of the file has gone. */
  function fetchRanking(query, options, signal, onUpload) {
    if (!query.file) {
      const url = serviceUrl(query, options);
      if (!tooLong(url)) return fetchJson(url, signal);
      const body = new URLSearchParams(queryParams(query, options));
      return fetchJson(config.service, signal, { method: "POST", body });
    }
    const form = new FormData();
    form.append("IMAGE", query.file, query.file.name);
    for (const [name, value] of queryParams(query, options)) form.append(name, value);
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", config.service);
      xhr.responseType = "text";
      xhr.setRequestHeader("Accept", JSON_TYPE);
      if (onUpload) {
        xhr.upload.addEventListener("progress", (event) => onUpload(event.loaded, event.total));
        xhr.upload.addEventListener("load", () => onUpload(1, 1));
      }
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (error) {
          body = null;
        }
        if (xhr.status !== 200 || !body || !Array.isArray(body.results)) {
          reject(serviceError(xhr.status, body));
        } else {
          resolve(body);
        }
      });
      xhr.addEventListener("error", () => reject(new Error("the similarity service could not be reached")));
      xhr.addEventListener("abort", () => reject(new DOMException("superseded", "AbortError")));
      if (signal) signal.addEventListener("abort", () => xhr.abort());
      xhr.send(form);
    });
  }

  async function fetchJson(url, signal, init = {}) {
    let response;
    try {
      response = await fetch(url, { ...init, signal, headers: { Accept: JSON_TYPE } });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new Error(`the similarity service could not be reached (${error.message})`);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || !body || !Array.isArray(body.results)) throw serviceError(response.status, body);
    return body;
  }

  /* -------------------------------------------------------------- ranking */

  /* One ranking of one query: its total, the rows loaded so far, and more on demand. */
  class Ranking {
    constructor(query, first) {
      this.query = query;
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
        fetchRanking(this.query, { offset: page * size }, this.controller.signal).then(
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
    constructor(container, onPick) {
      this.container = container;
      this.ranking = null;
      this.selected = new Set();
      this.excluded = new Set();
      this.live = new Map(); // index in the ranking -> tile in the DOM
      this.pool = [];
      this.first = 0;
      this.last = -1;
      this.measure();
      this.columns = 1;
      this.width = -1;
      this.frameRequested = false;

      container.addEventListener("click", (event) => {
        const button = event.target.closest(".tile-pick, .tile-less");
        const did = button && button.closest(".tile").dataset.did;
        if (!did) return;
        onPick(did, button.classList.contains("tile-less") ? "less" : state.mode);
      });
      // N (or minus) on a tile marks it "less like this", whatever the click mode.
      container.addEventListener("keydown", (event) => {
        if (!LESS_KEYS.has(event.key) || event.ctrlKey || event.metaKey || event.altKey) return;
        const tile = event.target.closest && event.target.closest(".tile");
        if (!tile || !tile.dataset.did) return;
        event.preventDefault();
        onPick(tile.dataset.did, "less");
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

    /* The tile geometry comes from the style sheet (it changes on small screens). */
    measure() {
      const style = getComputedStyle(this.container);
      this.tileWidth = parseFloat(style.getPropertyValue("--tile-w"));
      this.tileHeight = parseFloat(style.getPropertyValue("--tile-h"));
      this.gap = parseFloat(style.getPropertyValue("--tile-gap"));
      this.rowPitch = this.tileHeight + this.gap;
    }

    show(ranking) {
      this.ranking = ranking;
      this.container.dataset.total = String(ranking.total);
      this.container.dataset.count = String(ranking.loaded);
      this.layout(true);
    }

    clear() {
      if (this.ranking) this.ranking.abandon();
      this.ranking = null;
      this.container.dataset.total = "0";
      this.container.dataset.count = "0";
      this.layout(true);
    }

    /* Rows arrived for the ranking on show: fill the tiles that waited for them. */
    refresh(ranking) {
      if (ranking !== this.ranking) return;
      this.container.dataset.count = String(ranking.loaded);
      this.render(true);
    }

    setMarks(selected, excluded) {
      this.selected = selected;
      this.excluded = excluded;
      for (const tile of this.live.values()) this.markSelected(tile);
    }

    get count() {
      return this.ranking ? this.ranking.total : 0;
    }

    layout(refill) {
      const width = this.container.clientWidth;
      const pitchBefore = this.tileWidth;
      if (width !== this.width) this.measure();
      if (this.tileWidth !== pitchBefore) refill = true;
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
      const less = element("button", "tile-less", "−");
      less.type = "button";
      const links = element("span", "tile-links");
      const datalink = element("a", "", "DataLink");
      const fits = element("a", "", "FITS");
      fits.setAttribute("download", "");
      links.append(datalink, fits);
      tile.append(pick, less, links);
      tile.parts = {
        pick, less, image, rank, target, band, similarity, datalink, fits,
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
      parts.pick.title = `${name}\nBand ${band} · ${category}\nSimilarity ${similarity}\n` +
        "Press N for “less like this”";
      parts.less.disabled = false;
      parts.less.title = `Less like this: rank away from ${name} (or press N on the image)`;
      parts.less.setAttribute("aria-label", `Less like ${name}`);
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
      tile.classList.remove("loading", "is-selected", "is-excluded");
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
      parts.less.disabled = true;
      parts.pick.removeAttribute("title");
      parts.pick.removeAttribute("aria-pressed");
      parts.datalink.removeAttribute("href");
      parts.fits.removeAttribute("href");
    }

    markSelected(tile) {
      if (tile.classList.contains("pending")) return;
      const selected = this.selected.has(tile.dataset.did);
      const excluded = this.excluded.has(tile.dataset.did);
      tile.classList.toggle("is-selected", selected);
      tile.classList.toggle("is-excluded", excluded);
      tile.parts.pick.setAttribute("aria-pressed", selected ? "true" : "false");
      tile.parts.less.setAttribute("aria-pressed", excluded ? "true" : "false");
    }
  }

  const grid = new VirtualGrid(gridElement, pick);

  /* ------------------------------------------------------------ the state */

  /* The page's URL for the state, relative to the page itself (config.page_path is
   * "similar"), so that it stays under whatever prefix the page was served at. */
  function pageUrl() {
    if (isUpload() || !state.origin) return config.page_path;
    const parts = selectionIds().map((did) => `ID=${encodeURIComponent(did)}`);
    parts.push(...state.excluded.map((did) => `NOT_ID=${encodeURIComponent(did)}`));
    if (state.minSeparation !== config.default_min_separation) {
      parts.push(`MIN_SEPARATION=${state.minSeparation}`);
    }
    return `${config.page_path}?${parts.join("&")}`;
  }

  function chip(did, role) {
    const card = cards.get(did) || { obs_publisher_did: did };
    const name = card.target_name || "Unnamed target";
    const item = element("li", `chip chip-${role}`);
    item.dataset.did = did;
    item.dataset.role = role;
    item.title = `${name} · band ${card.band_list || "?"} · ${card.scientific_category || "no category"}`;
    const image = element("img");
    if (card.preview_url) image.src = card.preview_url;
    image.alt = "";
    image.width = 40;
    image.height = 40;
    if (role === "original") {
      item.append(image, element("span", "chip-label", name));
      return item;
    }
    // A selected or excluded image is a pressed toggle: clicking it again takes it out.
    const button = element("button", "chip-pick");
    button.type = "button";
    button.setAttribute("aria-pressed", "true");
    const what = role === "excluded" ? "marked less like this" : "selected";
    button.setAttribute("aria-label", `${name}, ${what}; press to take it out`);
    if (role === "excluded") button.append(element("span", "chip-badge", "less"));
    button.append(image, element("span", "chip-label", name), element("span", "chip-remove", "×"));
    button.addEventListener("click", () => release(did));
    item.append(button);
    item.title += role === "excluded" ? "\nLess like this; click to take the mark away" :
      "\nClick to remove it from the selection";
    return item;
  }

  function uploadChip() {
    const item = element("li", "chip chip-original chip-upload");
    item.dataset.role = "original";
    item.title = `Your image: ${state.origin.file.name}`;
    const mark = element("span", "chip-file", "FITS");
    item.append(mark, element("span", "chip-label", state.origin.file.name));
    return item;
  }

  function showState() {
    const selected = new Set(selectionIds());
    grid.setMarks(selected, new Set(state.excluded));
    const count = selected.size + (isUpload() ? 1 : 0);
    selectionCount.textContent = String(count);
    clearButton.hidden = state.selected.length + state.excluded.length === 0;
    const chips = document.createDocumentFragment();
    if (isUpload()) chips.append(uploadChip());
    else if (state.origin) chips.append(chip(state.origin.did, "original"));
    for (const did of state.selected) chips.append(chip(did, "selected"));
    for (const did of state.excluded) chips.append(chip(did, "excluded"));
    strip.replaceChildren(chips);
    updateStripScroll();
    history.replaceState(null, "", pageUrl());
    shareLink.href = window.location.href;
    shareLink.hidden = !state.origin || isUpload();
    shareNote.hidden = !isUpload();
    otherTargets.checked = state.minSeparation > 0;
    separationLabel.textContent = `${state.onSeparation}″`;
    updateExports();
  }

  /* A click (or key) on an image: "more" selects it, "less" marks it; again takes it out. */
  function pick(did, mode) {
    if (state.origin && did === state.origin.did) return;
    let selected = state.selected.filter((other) => other !== did);
    let excluded = state.excluded.filter((other) => other !== did);
    const wasSelected = selected.length !== state.selected.length;
    const wasExcluded = excluded.length !== state.excluded.length;
    if (mode === "less" && !wasExcluded) excluded = [...excluded, did];
    if (mode !== "less" && !wasSelected) selected = [...selected, did];
    change({ selected, excluded });
  }

  function release(did) {
    change({
      selected: state.selected.filter((other) => other !== did),
      excluded: state.excluded.filter((other) => other !== did),
    });
  }

  /* Apply a change of the state and rank it; go back to the previous state if that fails. */
  async function change(next) {
    const previous = {
      selected: state.selected, excluded: state.excluded, minSeparation: state.minSeparation,
    };
    Object.assign(state, next);
    showState();
    if ((await rank()) === "failed") {
      Object.assign(state, previous);
      showState();
    }
  }

  clearButton.addEventListener("click", () => change({ selected: [], excluded: [] }));

  for (const radio of document.querySelectorAll("input[name='click-mode']")) {
    radio.addEventListener("change", () => {
      if (!radio.checked) return;
      state.mode = radio.value;
      document.body.classList.toggle("mode-less", state.mode === "less");
    });
  }

  otherTargets.addEventListener("change", () => {
    change({ minSeparation: otherTargets.checked ? state.onSeparation : 0 });
  });
  showHidden.addEventListener("click", () => change({ minSeparation: 0 }));

  /* The strip scrolls sideways when the chips do not fit; arrows say so and scroll it. */
  function updateStripScroll() {
    const overflow = strip.scrollWidth - strip.clientWidth > 1;
    const atStart = strip.scrollLeft <= 1;
    const atEnd = strip.scrollLeft + strip.clientWidth >= strip.scrollWidth - 1;
    stripFrame.classList.toggle("can-scroll-back", overflow && !atStart);
    stripFrame.classList.toggle("can-scroll-on", overflow && !atEnd);
    stripBack.hidden = !overflow || atStart;
    stripOn.hidden = !overflow || atEnd;
    let hiddenChips = 0;
    const frame = strip.getBoundingClientRect();
    for (const item of strip.children) {
      const box = item.getBoundingClientRect();
      if (box.right > frame.right + 1 || box.left < frame.left - 1) hiddenChips += 1;
    }
    stripOn.setAttribute("aria-label", `Scroll the selection: ${hiddenChips} more not in view`);
    stripOn.title = `${hiddenChips} more not in view`;
    stripOn.dataset.more = String(hiddenChips);
  }

  strip.addEventListener("scroll", updateStripScroll, { passive: true });
  new ResizeObserver(updateStripScroll).observe(strip);
  for (const [button, direction] of [[stripBack, -1], [stripOn, 1]]) {
    button.addEventListener("click", () => {
      strip.scrollBy({ left: direction * Math.max(120, strip.clientWidth * 0.8), behavior: "smooth" });
    });
  }

  /* ------------------------------------------------- progress and errors */

  function showError(text) {
    message.textContent = text;
    message.hidden = false;
  }

  function setBusy(busy) {
    gridElement.classList.toggle("busy", busy);
    gridElement.setAttribute("aria-busy", busy ? "true" : "false");
  }

  /* Show progress only for a request that takes longer than PROGRESS_DELAY_MS. */
  function startProgress(text) {
    let shown = false;
    progressText.textContent = text;
    progressBar.hidden = true;
    const timer = setTimeout(() => {
      shown = true;
      progress.hidden = false;
    }, PROGRESS_DELAY_MS);
    return {
      uploaded(loaded, total) {
        if (!total) return;
        const percent = Math.round((100 * loaded) / total);
        progressBar.hidden = loaded >= total;
        progressBar.value = percent;
        progressText.textContent = loaded >= total ? "Cutting out and ranking…" : `Uploading ${percent} %…`;
      },
      stop() {
        clearTimeout(timer);
        progress.hidden = true;
        return shown;
      },
    };
  }

  function showGridNote(text, isError) {
    gridNote.textContent = text;
    gridNote.classList.toggle("grid-note-error", Boolean(isError));
    gridNote.hidden = !text;
  }

  /* ------------------------------------------------- asking for a ranking */

  /* Rank the current state: first page and quick select; "ranked", "failed" or "superseded". */
  async function rank() {
    if (!state.origin) return "failed";
    if (state.request) state.request.abort();
    const request = new AbortController();
    state.request = request;
    const query = currentQuery();
    setBusy(true);
    const busy = startProgress(query.file ? `Uploading ${query.file.name}…` : "Ranking…");
    let body;
    try {
      body = await fetchRanking(query, { quickSelect: true }, request.signal, busy.uploaded);
    } catch (error) {
      if (error.name === "AbortError") return "superseded";
      busy.stop();
      state.request = null;
      setBusy(false);
      const what = query.file ? "search by your image" : "rank this selection";
      showError(`The similarity service could not ${what}: ${error.message}`);
      if (!grid.ranking) {
        resultCount.textContent = "No ranking to show.";
        showGridNote(`Nothing to show: ${error.message}`, true);
      }
      return "failed";
    }
    if (state.request !== request) return "superseded";
    busy.stop();
    state.request = null;
    message.hidden = true;
    show(query, body);
    setBusy(false);
    return "ranked";
  }

  function show(query, body) {
    if (grid.ranking) grid.ranking.abandon();
    state.imageKind = body.image_kind || state.imageKind;
    state.modelId = body.model_id;
    if (body.upload && isUpload()) showUploaded(body.upload);
    const ranking = new Ranking(query, body);
    const kind = kindLabel(state.imageKind);
    const count = selectionIds().length + (isUpload() ? 1 : 0);
    const by = count === 1 ? (isUpload() ? "your image" : "the original image") : `${count} selected images`;
    const away = query.excluded.length ? `, away from ${query.excluded.length}` : "";
    resultCount.textContent = ranking.total === 0
      ? `No other public ${kind} image can be compared with this one${body.hidden_nearby ? " outside the selected fields" : " yet"}.`
      : `${ranking.total.toLocaleString("en")} similar ${kind} images, ranked by ${by}${away}`;
    const hidden = body.hidden_nearby || 0;
    hiddenText.textContent = `${hidden.toLocaleString("en")} observation${hidden === 1 ? "" : "s"} of the selected positions hidden`;
    hiddenCount.hidden = !(query.minSeparation > 0 && hidden > 0);
    showGridNote(ranking.total === 0 ? resultCount.textContent : "", false);
    // Newly ranked: show the best ones, not whatever row the user had scrolled to.
    const top = gridElement.getBoundingClientRect().top + window.scrollY - toolbar.offsetHeight - 16;
    if (window.scrollY > top) window.scrollTo(0, top);
    grid.show(ranking);
    showQuickSelect(body.quick_select || []);
    showState();
  }

  /* -------------------------------------------------------- quick select */

  function showQuickSelect(groups) {
    const items = document.createDocumentFragment();
    groups.forEach((group, position) => {
      const card = cards.get(group.representative) || { obs_publisher_did: group.representative };
      const name = card.target_name || "Unnamed target";
      const item = element("li");
      const button = element("button", "quick-pick");
      button.type = "button";
      button.dataset.did = group.representative;
      button.title = `Group ${position + 1}, represented by ${name} (band ${card.band_list || "?"}): ` +
        `select the ${group.members.length} images closest to it`;
      const image = element("img");
      if (card.preview_url) image.src = card.preview_url;
      image.alt = `Preview of ${describe(card)}`;
      image.width = 90;
      image.height = 90;
      button.append(image, element("span", "quick-label", name),
        element("span", "quick-size", `+${group.members.length} images`));
      button.addEventListener("click", () => {
        const taken = new Set([...selectionIds(), ...state.excluded]);
        const added = group.members.filter((did) => !taken.has(did));
        change({ selected: [...state.selected, ...added] });
      });
      item.append(button);
      items.append(item);
    });
    if (groups.length === 0) {
      items.append(element("li", "quick-empty", "No groups for this ranking: too few similar images."));
    }
    quickRow.replaceChildren(items);
    quickRow.setAttribute("aria-busy", "false");
  }

  /* ------------------------------------------------------------- exports */

  function slug(text) {
    return (text || "image").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 60) || "image";
  }

  function originName() {
    if (isUpload()) return state.origin.file.name.replace(/\.fits?(\.gz)?$/i, "");
    const card = state.origin && cards.get(state.origin.did);
    return (card && card.target_name) || "image";
  }

  function exportUrl(format) {
    return serviceUrl(currentQuery(), { maxrec: config.export_maxrec, format });
  }

  /* ADQL string literal: single quotes doubled (ADQL 2.1, section 2.1.5). */
  function adqlString(text) {
    return `'${String(text).replace(/'/g, "''")}'`;
  }

  /* The original image's precomputed neighbour list, with the page's filters, in ADQL. */
  function neighbourAdql() {
    const original = state.origin.did;
    const others = [...state.selected, ...state.excluded];
    const lines = [
      `SELECT TOP ${config.export_maxrec} n.rank, n.neighbour_did, o.target_name, o.s_ra, o.s_dec,`,
      "  o.band_list, o.scientific_category, n.cosine_similarity",
      "FROM similarity.neighbour AS n",
      "JOIN ivoa.obscore AS o ON o.obs_publisher_did = n.neighbour_did",
    ];
    if (state.minSeparation > 0) {
      lines.push("JOIN similarity.image AS i ON i.obs_publisher_did = n.neighbour_did");
    }
    lines.push(`WHERE n.obs_publisher_did = ${adqlString(original)}`);
    if (state.modelId !== null && state.modelId !== undefined) {
      lines.push(`  AND n.model_id = ${Number(state.modelId)}`);
    }
    if (others.length) {
      lines.push(`  AND n.neighbour_did NOT IN (${others.map(adqlString).join(", ")})`);
    }
    if (state.minSeparation > 0) {
      const degrees = `${state.minSeparation} / 3600.0`; // arcsec in degrees
      lines.push(
        "  AND NOT EXISTS (SELECT * FROM similarity.image AS s",
        `    WHERE s.obs_publisher_did IN (${selectionIds().map(adqlString).join(", ")})`,
        "    AND DISTANCE(POINT(s.cutout_ra, s.cutout_dec), POINT(i.cutout_ra, i.cutout_dec))",
        `      < ${degrees})`,
      );
    }
    lines.push("ORDER BY n.rank");
    return lines.join("\n");
  }

  function updateExports() {
    const ready = Boolean(state.origin);
    const name = slug(originName());
    exportVotable.download = `vosim-similar-to-${name}.vot.xml`;
    exportCsv.download = `vosim-similar-to-${name}.csv`;
    // An upload's ranking is the answer to a POST (see below): no URL could fetch it again;
    // nor could one too long for the service.
    const linked = ready && !isUpload() && !tooLong(exportUrl("votable"));
    exportVotable.href = linked ? exportUrl("votable") : "#";
    exportCsv.href = linked ? exportUrl("csv") : "#";
    exportVotable.dataset.posted = linked ? "false" : "true";
    exportCsv.dataset.posted = linked ? "false" : "true";
    exportVotable.toggleAttribute("aria-disabled", !ready);
    exportCsv.toggleAttribute("aria-disabled", !ready);
    const tapReady = ready && !isUpload();
    tapAdql.hidden = !tapReady;
    tapQuery.hidden = true;
    tapNote.hidden = !ready;
    tapNote.textContent = "An uploaded image has no neighbour list in the archive's TAP tables.";
    if (tapReady) {
      const adql = neighbourAdql();
      adqlText.textContent = adql;
      const params = new URLSearchParams([["REQUEST", "doQuery"], ["LANG", "ADQL"], ["QUERY", adql]]);
      tapQuery.href = `${config.tap_sync}?${params}`;
      tapQuery.hidden = tooLong(tapQuery.href);
      tapNote.hidden = !tapQuery.hidden;
      tapNote.textContent = "This query is too long for a link: copy its ADQL into TOPCAT.";
      tapQuery.title = "The original image's precomputed neighbours (similarity.neighbour) " +
        "with the same images left out, as a TAP query; the page's ranking also follows your selection";
    }
    sampTable.disabled = !ready || !linked;
    sampTable.title = isUpload()
      ? "A ranking of an uploaded image has no address a SAMP tool could load: download it instead"
      : !linked && ready
        ? "This selection is too long for an address a SAMP tool could load: download it instead"
        : "Send the ranking (VOTable) to TOPCAT, Aladin or any SAMP tool on your desktop";
    updateSampChoice();
  }

  /* An upload's ranking (or a very long selection's) exists only as the answer to a POST:
   * download that answer. */
  for (const [link, format] of [[exportVotable, "votable"], [exportCsv, "csv"]]) {
    link.addEventListener("click", async (event) => {
      if (link.dataset.posted === "false") return; // a plain link: the browser downloads it
      event.preventDefault();
      if (!state.origin) return; // nothing ranked yet
      const query = currentQuery();
      const form = new FormData();
      if (query.file) form.append("IMAGE", query.file, query.file.name);
      for (const [key, value] of queryParams(query, { maxrec: config.export_maxrec, format })) {
        form.append(key, value);
      }
      const busy = startProgress(`Preparing the ${format === "csv" ? "CSV" : "VOTable"} file…`);
      try {
        const response = await fetch(config.service, { method: "POST", body: form });
        if (!response.ok) throw new Error(`the similarity service answered HTTP ${response.status}`);
        const blob = await response.blob();
        const url = URL.createObjectURL(blob);
        const save = element("a");
        save.href = url;
        save.download = link.download;
        document.body.append(save);
        save.click();
        save.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      } catch (error) {
        showError(`The ranking could not be downloaded: ${error.message}`);
      } finally {
        busy.stop();
      }
    });
  }

  /* ---------------------------------------------------------------- SAMP */

  const samp = window.VosimSamp ? new window.VosimSamp.SampClient({
    "samp.name": "vosim",
    "samp.description.text": "Morphological image similarity search of the archive",
    "samp.icon.url": new URL(document.querySelector("link[rel='icon']").href, window.location.href).href,
    "samp.documentation.url": new URL(".", window.location.href).href,
  }) : null;

  function sampSay(text, isError) {
    sampStatus.textContent = text;
    sampStatus.classList.toggle("samp-error", Boolean(isError));
  }

  function updateSampChoice() {
    const dids = selectionIds().filter((did) => (cards.get(did) || {}).file_url);
    const previous = sampChoice.value;
    sampChoice.replaceChildren(...dids.map((did) => {
      const card = cards.get(did);
      const option = element("option", "", card.target_name || did);
      option.value = did;
      return option;
    }));
    if (dids.includes(previous)) sampChoice.value = previous;
    sampChoice.hidden = dids.length < 2;
    sampImage.disabled = dids.length === 0;
  }

  async function sampSend(mtype, params, what) {
    if (!samp) return;
    sampSay(samp.registered ? `Sending ${what}…` : "Connecting to your SAMP hub (accept vosim if it asks)…");
    try {
      const names = await samp.notifyAll(mtype, params);
      if (names.length === 0) {
        sampSay(`No SAMP tool that takes ${what} is running: start TOPCAT or Aladin, then send again.`, true);
      } else {
        sampSay(`Sent ${what} to ${names.join(", ")}.`);
      }
    } catch (error) {
      sampSay(error.kind === "refused" ? "The SAMP hub did not let this page connect." : error.message, true);
    }
  }

  sampTable.addEventListener("click", () => {
    const url = new URL(exportUrl("votable"), window.location.href).href;
    sampSend("table.load.votable", {
      url,
      "table-id": `vosim-${slug(originName())}`,
      name: `Similar to ${originName()}`,
    }, "the ranking");
  });

  sampImage.addEventListener("click", () => {
    const did = sampChoice.value || selectionIds()[0];
    const card = cards.get(did);
    if (!card || !card.file_url) return;
    sampSend("image.load.fits", {
      url: new URL(card.file_url, window.location.href).href,
      "image-id": did,
      name: card.target_name || did,
    }, `the FITS file of ${card.target_name || did}`);
  });

  /* ------------------------------------------------------------ uploads */

  const originalFigure = $("original");
  const originalThumb = originalFigure.querySelector(".original-thumb");
  const cutoutCanvas = $("upload-cutout");
  const originalTitle = $("original-title");
  const originalEyebrow = $("original-eyebrow");
  const originalFacts = $("original-facts");
  const originalLinks = $("original-links");

  function formatBytes(bytes) {
    if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
    if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(0)} kB`;
    return `${bytes} bytes`;
  }

  function fact(name, value) {
    return [element("dt", "", name), element("dd", "", value)];
  }

  /* Draw what the service made of the upload: its cut-out, kind, rule and S/N. */
  function showUploaded(described) {
    state.origin.described = described;
    const picture = described.cutout_image;
    if (picture) {
      const bytes = Uint8ClampedArray.from(atob(picture.rgba), (c) => c.charCodeAt(0));
      cutoutCanvas.width = picture.width;
      cutoutCanvas.height = picture.height;
      cutoutCanvas.getContext("2d").putImageData(new ImageData(bytes, picture.width, picture.height), 0, 0);
      cutoutCanvas.hidden = false;
    }
    const snr = typeof described.peak_snr === "number" ? described.peak_snr.toFixed(1) : "unknown";
    const rule = described.cutout_rule === "peak"
      ? `centred on the brightest pixel (S/N ${snr} > 5)`
      : `centred on the image centre: no pixel above S/N 5 (the brightest has ${snr})`;
    cutoutCanvas.setAttribute("aria-label",
      `The 64×64 cut-out the service made of ${state.origin.file.name}, ${rule}`);
    originalEyebrow.textContent = "Your image (the service's cut-out)";
    originalTitle.textContent = state.origin.file.name;
    const position = typeof described.cutout_ra === "number" && Number.isFinite(described.cutout_ra)
      ? `RA ${described.cutout_ra.toFixed(5)}°, Dec ${described.cutout_dec.toFixed(5)}°`
      : "unknown";
    originalFacts.replaceChildren(
      ...fact("Kind", KIND_TITLES[described.image_kind] || described.image_kind),
      ...fact("Cut-out", rule),
      ...fact("Centre", position),
      ...fact("File", `${state.origin.file.name}, ${formatBytes(state.origin.file.size)}`),
    );
    originalFacts.querySelector("dd").classList.add("kind");
    originalFacts.querySelector("dd").dataset.kind = described.image_kind;
    originalFacts.hidden = false;
    originalLinks.hidden = true;
    const explained = $("upload-explained");
    if (explained) explained.hidden = true;
  }

  /* Start a search from a file: the origin becomes the upload, the selection starts afresh. */
  async function searchByFile(file) {
    if (!file) return;
    if (file.size > config.upload_limit_bytes) {
      showError(`${file.name} has ${formatBytes(file.size)}; this service accepts files of at ` +
        `most ${formatBytes(config.upload_limit_bytes)}.`);
      return;
    }
    const previous = { origin: state.origin, selected: state.selected, excluded: state.excluded };
    const previousCount = resultCount.textContent;
    state.origin = { file, described: null };
    state.selected = [];
    state.excluded = [];
    originalThumb.classList.add("uploading");
    resultCount.textContent = `Searching by ${file.name}…`;
    showState();
    const outcome = await rank();
    originalThumb.classList.remove("uploading");
    if (outcome === "failed") {
      Object.assign(state, previous);
      if (resultCount.textContent.startsWith("Searching by")) resultCount.textContent = previousCount;
      showState();
    } else if (outcome === "ranked") {
      const shown = originalThumb.querySelector("img");
      if (shown) shown.remove();
      originalFigure.dataset.mode = "upload";
    }
  }

  uploadButton.addEventListener("click", () => uploadInput.click());
  uploadInput.addEventListener("change", () => {
    const [file] = uploadInput.files;
    uploadInput.value = "";
    searchByFile(file);
  });

  let dragDepth = 0;
  const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types).includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    dropOverlay.hidden = false;
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropOverlay.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    dropOverlay.hidden = true;
    const files = Array.from(event.dataTransfer.files);
    if (files.length > 1) showError("Drop one FITS file at a time.");
    searchByFile(files[0]);
  });

  /* -------------------------------------------------------------- start */

  document.body.classList.add("similar-ready");
  showState();
  if (state.origin) {
    rank();
  } else {
    resultCount.textContent = "Choose or drop a FITS file to see the archive's images most like it.";
    showGridNote("Your image's most similar images will be shown here.", false);
    quickRow.replaceChildren(element("li", "quick-empty",
      "The groups of the most similar images appear once your image is ranked."));
    quickRow.setAttribute("aria-busy", "false");
  }
})();
