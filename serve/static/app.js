// 量刑建议辅助系统: the prosecutor's page. Vanilla JS, no external assets; every value from the API is
// inserted as text (never as HTML).
"use strict";

const KEY_STORAGE = "liangxing.apiKey";
const SVG_NS = "http://www.w3.org/2000/svg";

const PROVINCES = [
  ["BJ", "北京"], ["TJ", "天津"], ["HE", "河北"], ["SX", "山西"], ["NM", "内蒙古"], ["LN", "辽宁"], ["JL", "吉林"],
  ["HL", "黑龙江"], ["SH", "上海"], ["JS", "江苏"], ["ZJ", "浙江"], ["AH", "安徽"], ["FJ", "福建"], ["JX", "江西"],
  ["SD", "山东"], ["HA", "河南"], ["HB", "湖北"], ["HN", "湖南"], ["GD", "广东"], ["GX", "广西"], ["HI", "海南"],
  ["CQ", "重庆"], ["SC", "四川"], ["GZ", "贵州"], ["YN", "云南"], ["XZ", "西藏"], ["SN", "陕西"], ["GS", "甘肃"],
  ["QH", "青海"], ["NX", "宁夏"], ["XJ", "新疆"], ["XJB", "兵团"],
];
const PROVINCE_NAME = Object.fromEntries(PROVINCES);

const CIRCUMSTANCES = [
  ["surrender", "自首"], ["confession", "坦白"], ["court_plea", "当庭认罪"], ["plea_agreement", "认罪认罚"],
  ["meritorious", "立功"], ["major_meritorious", "重大立功"], ["recidivist", "累犯"], ["prior_record", "前科"],
  ["restitution", "退赃退赔"], ["compensation", "赔偿损失"], ["forgiveness", "取得谅解"], ["reconciliation", "刑事和解"],
  ["attempt", "未遂"], ["discontinuation", "中止"], ["preparation", "预备"], ["juvenile", "未成年"],
  ["elderly", "已满75周岁"], ["vulnerable_victim", "侵害弱势人员"], ["disaster_time", "灾疫期间"], ["disability", "聋哑或盲人"],
];

const FORM_LABEL = { custody: "实刑", probation: "缓刑", non_custodial: "非监禁刑", life: "无期徒刑", death: "死刑" };
const ROLE_LABEL = { principal: "主犯", accessory: "从犯", coerced: "胁从犯", instigator: "教唆犯", sole: "单独犯罪" };
const SOURCE_LABEL = { input: "录入", extracted: "自动识别", default: "默认", name: "按名称识别" };

const EXAMPLE = {
  facts: "经审理查明：2023年5月12日，被告人张三伙同被告人李四在本市某商场内，趁被害人王某不备，窃取其手机一部及现金，" +
    "共计价值人民币12000元。张三负责望风，李四实施扒窃。案发后，张三主动到公安机关投案，如实供述犯罪事实；李四到案后如实供述。" +
    "二被告人已退赔被害人全部损失，取得被害人谅解，并签署认罪认罚具结书。",
  court: "江苏省南京市鼓楼区人民法院",
  province: "JS",
  defendants: [
    { name: "张三", charges: "盗窃", role: "accessory" },
    { name: "李四", charges: "盗窃", role: "principal" },
  ],
};

// --------------------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function months(m) {
  if (m === null || m === undefined || Number.isNaN(m)) return "—";
  const total = Math.round(m);
  if (total <= 0) return "0";
  const y = Math.floor(total / 12), r = total % 12;
  return (y ? `${y}年` : "") + (r ? `${r}个月` : "");
}

function yuan(v) {
  if (v === null || v === undefined) return "—";
  return `${Math.round(v).toLocaleString("zh-CN")}元`;
}

function pct(v) { return `${Math.round(v * 100)}%`; }

function apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ""; }

async function api(path, body) {
  const headers = { "Content-Type": "application/json" };
  const key = apiKey();
  if (key) headers["Authorization"] = `Bearer ${key}`;
  const res = await fetch(path, { method: body === undefined ? "GET" : "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (!res.ok) {
    const err = (data && data.error) || { message: `HTTP ${res.status}` };
    const fields = (err.fields || []).map((f) => `· ${f.field}：${f.message}`).join("\n");
    const e = new Error(err.message + (fields ? `\n${fields}` : ""));
    e.status = res.status;
    throw e;
  }
  return data;
}

// --------------------------------------------------------------------------- key and status

function initKey() {
  const input = document.getElementById("api-key");
  input.value = apiKey();
  document.getElementById("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    showError("");
  });
  document.getElementById("key-clear").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    input.value = "";
  });
}

async function checkReady() {
  const pill = document.getElementById("model-status");
  try {
    const res = await fetch("/readyz");
    const data = await res.json();
    if (data.ready) {
      pill.textContent = `模型 ${data.model_version} · 规则 ${data.ruleset_version}` + (data.index_size ? ` · 类案库 ${data.index_size.toLocaleString("zh-CN")} 件` : "");
      pill.className = "pill ok";
    } else {
      pill.textContent = "模型未就绪";
      pill.title = data.reason || "";
      pill.className = "pill bad";
    }
  } catch {
    pill.textContent = "服务不可达";
    pill.className = "pill bad";
  }
}

// --------------------------------------------------------------------------- the form

function addDefendant(data) {
  const tpl = document.getElementById("defendant-template");
  const node = tpl.content.firstElementChild.cloneNode(true);
  const box = node.querySelector(".circumstances");
  for (const [code, label] of CIRCUMSTANCES) {
    box.append(el("label", {}, el("input", { type: "checkbox", value: code, class: "d-circ", disabled: true }), ` ${label}`));
  }
  box.classList.add("disabled");
  const auto = node.querySelector(".d-auto");
  auto.addEventListener("change", () => {
    box.classList.toggle("disabled", auto.checked);
    box.querySelectorAll("input").forEach((i) => { i.disabled = auto.checked; });
  });
  node.querySelector(".d-tiers-clear").addEventListener("click", () => setStatedTiers(node, {}));
  node.querySelector(".remove").addEventListener("click", () => {
    if (document.querySelectorAll("#defendants .defendant").length > 1) { node.remove(); renumber(); }
  });
  if (data) {
    node.querySelector(".d-name").value = data.name || "";
    node.querySelector(".d-charges").value = data.charges || "";
    node.querySelector(".d-role").value = data.role || "";
  }
  document.getElementById("defendants").append(node);
  renumber();
}

function renumber() {
  document.querySelectorAll("#defendants .defendant").forEach((d, i) => { d.querySelector(".idx").textContent = i + 1; });
}

function collectCase() {
  const facts = document.getElementById("facts").value;
  const payload = { facts, defendants: [] };
  const court = document.getElementById("court").value.trim();
  const province = document.getElementById("province").value;
  const date = document.getElementById("date").value;
  if (court) payload.court = court;
  if (province) payload.province = province;
  if (date) payload.date = date;
  for (const d of document.querySelectorAll("#defendants .defendant")) {
    const item = {
      name: d.querySelector(".d-name").value.trim(),
      charges: d.querySelector(".d-charges").value.split(/[、,，;；\s]+/).map((s) => s.trim()).filter(Boolean),
    };
    const role = d.querySelector(".d-role").value;
    if (role) item.role = role;
    if (!d.querySelector(".d-auto").checked) {
      item.circumstances = [...d.querySelectorAll(".d-circ:checked")].map((i) => i.value);
    }
    const amount = d.querySelector(".d-amount").value;
    if (amount !== "") item.quantities = { amount_yuan: Number(amount) };
    const perCharge = chargeAmounts(d.querySelector(".d-charge-amounts").value);
    if (perCharge.length) {
      item.charge_quantities = {};
      for (const [typed, yuan] of perCharge) {
        const bare = typed.replace(/罪$/, "");
        item.charges = joinCharge(item.charges, bare);
        const charge = item.charges.find((c) => c.replace(/罪$/, "") === bare);
        if (!charge) throw new Error(`分罪数额中的“${typed}”不是被告人${item.name}的罪名（${item.charges.join("、")}）`);
        item.charge_quantities[charge] = { amount_yuan: yuan };
      }
    }
    const age = d.querySelector(".d-age").value;
    if (age !== "") item.age = Number(age);
    const pregnant = d.querySelector(".d-pregnant").value;
    if (pregnant !== "") item.pregnant = pregnant === "true";
    const tiers = statedTiers(d);
    // Chosen in the tier chooser, even none: sent, so that the facts are not read for a tier either.
    if (Object.keys(tiers).length || d.dataset.tiersGiven === "1") {
      // A charge whose name holds 、 (掩饰、隐瞒犯罪所得) was split with the list: send it whole, as tiers names it.
      for (const charge of Object.keys(tiers)) item.charges = joinCharge(item.charges, charge);
      item.tiers = tiers;
    }
    payload.defendants.push(item);
  }
  return payload;
}

function statedTiers(node) {
  try { return JSON.parse(node.dataset.tiers || "{}"); } catch { return {}; }
}

function setStatedTiers(node, tiers, given = false) {
  node.dataset.tiers = JSON.stringify(tiers);
  node.dataset.tiersGiven = given ? "1" : "";
  const note = node.querySelector(".d-tiers");
  const entries = Object.entries(tiers);
  note.hidden = !entries.length;
  note.querySelector(".d-tiers-text").textContent = entries.map(([c, t]) => `${c}罪：${t}`).join("；");
}

// "盗窃=5000；诈骗=100000" → [["盗窃", 5000], ["诈骗", 100000]]; anything else is an error naming the entry,
// never a guess (an amount left out would price the charge with none).
function chargeAmounts(text) {
  const out = [];
  for (const entry of text.split(/[;；,，\n]+/).map((s) => s.trim()).filter(Boolean)) {
    const m = entry.match(/^(.+?)\s*[=＝:：]\s*(\d+(?:\.\d+)?)\s*元?$/);
    if (!m) throw new Error(`分罪数额“${entry}”看不懂：请写作“罪名=数额”，如 盗窃=5000；诈骗=100000`);
    out.push([m[1].trim(), Number(m[2])]);
  }
  return out;
}

function joinCharge(charges, whole) {
  const parts = whole.split("、");
  for (let i = 0; i + parts.length <= charges.length; i++) {
    if (parts.every((p, j) => charges[i + j].replace(/罪$/, "") === p)) {
      return [...charges.slice(0, i), whole, ...charges.slice(i + parts.length)];
    }
  }
  return charges;
}

function formNodeOf(name) {
  return [...document.querySelectorAll("#defendants .defendant")].find((d) => d.querySelector(".d-name").value.trim() === name);
}

function showError(message) {
  const box = document.getElementById("form-error");
  box.textContent = message;
  box.hidden = !message;
}

async function submitCase(ev) {
  ev.preventDefault();
  showError("");
  if (!apiKey()) {
    showError("请先在右上角输入 API 密钥（演示环境的密钥见服务启动时的输出或 <home>/demo-key.txt）。");
    document.getElementById("api-key").focus();
    return;
  }
  const button = document.getElementById("submit");
  button.disabled = true;
  button.textContent = "计算中…";
  try {
    const result = await api("/v1/recommendations", collectCase());
    renderResult(result);
  } catch (e) {
    showError(e.status === 401 ? "API 密钥无效或已吊销，请重新输入。" : e.message);
  } finally {
    button.disabled = false;
    button.textContent = "生成量刑建议";
  }
}

// --------------------------------------------------------------------------- results

function renderResult(result) {
  const meta = document.getElementById("result-meta");
  meta.replaceChildren(
    el("span", {}, "请求编号 ", el("code", { text: result.request_id })),
    el("span", {}, "模型 ", el("code", { text: result.model_version })),
    el("span", {}, "量刑规则 ", el("code", { text: result.ruleset_version })),
    el("span", {}, "接口版本 ", el("code", { text: result.api_version })),
  );
  meta.hidden = false;
  const out = document.getElementById("results");
  out.replaceChildren(...result.defendants.map((d) => renderDefendant(d, result.request_id)));
  if (result.warnings && result.warnings.length) out.prepend(renderWarnings(result.warnings));
}

function renderWarnings(warnings) {
  return el("ul", { class: "warnings" }, warnings.map((w) => el("li", {}, w.message + (w.field ? `（${w.field}）` : ""))));
}

function renderDefendant(d, requestId) {
  const r = d.range;
  const form = d.form;
  const unit = d.facts_used.unit;  // 被告单位: fined only (刑法第三十一条), no term to chart
  const head = el("div", { class: "card-head" },
    el("h3", { text: `${unit ? "被告单位" : "被告人"} ${d.name}` }),
    el("span", { class: "charges", text: d.charges.map((c) => `${c}罪`).join("、") + (d.statutory ? ` · 法定刑幅度：${d.statutory.tier_label}（刑法第${d.statutory.article}条）` : "") }),
  );
  // 无期徒刑 or 死刑 is a form, not months: no range to chart (the range's months are null).
  const noTerm = !unit && (r.point_months === null || r.point_months === undefined);
  // Too young to answer for any charge (刑法第十七条): no punishment, and nothing to chart.
  const notLiable = d.warnings.some((w) => w.code === "no_criminal_responsibility");
  const headline = unit
    ? el("div", { class: "headline" },
      kpi("建议刑罚", "单处罚金", "刑法第三十一条：对单位判处罚金，不判处刑期", true),
      kpi("罚金数额", yuan(d.fine_yuan), "由法院根据犯罪情节决定"),
    )
    : notLiable ? el("div", { class: "headline" },
      kpi("建议", "不负刑事责任", "刑法第十七条：未达对所控罪名负刑事责任的年龄", true),
    )
    : noTerm ? el("div", { class: "headline" },
      kpi("建议刑罚", FORM_LABEL[form.predicted] || form.label, `概率 ${pct(form.probabilities[form.predicted] || 0)}`, true),
      kpi("法定刑幅度", d.statutory ? d.statutory.tier_label : "—", d.statutory ? `刑法第${d.statutory.article}条` : ""),
      kpi("罚金估计", yuan(d.fine_yuan), ""),
    )
    : el("div", { class: "headline" },
      kpi("建议刑期区间", `${months(r.low_months)} 至 ${months(r.high_months)}`, `置信水平 ${pct(r.confidence)}`),
      kpi("点估计", months(r.point_months), "有期徒刑/拘役", true),
      kpi("刑罚执行方式", FORM_LABEL[form.predicted] || form.label, `概率 ${pct(form.probabilities[form.predicted] || 0)}`),
      kpi("罚金估计", yuan(d.fine_yuan), ""),
    );
  const probs = el("div", { class: "probs" }, Object.entries(form.probabilities).sort((a, b) => b[1] - a[1]).map(([k, v]) =>
    el("span", { class: "prob" }, FORM_LABEL[k] || k, el("span", { class: "bar" }, el("span", { style: `width:${Math.round(v * 100)}%` })), pct(v))));

  const body = el("div", { class: "card-body" },
    headline,
    unit || noTerm || notLiable ? null : el("div", { class: "rangebar" }, rangeBar(d)),
    unit || notLiable ? null : probs,
    d.warnings.length ? renderWarnings(d.warnings) : null,
    unit ? null : tierChooser(d),
    el("div", { class: "section-title", text: "量刑指导意见计算步骤" }),
    d.guideline ? el("p", { class: "summary", text: d.guideline.summary_text }) : null,
    d.guideline ? guidelineTable(d.guideline) : el("p", { class: "placeholder", text: "罪名不在量刑指导意见规则库中，仅有模型预测。" }),
    d.guideline ? el("details", {}, el("summary", { text: "完整说理文本" }), el("div", { class: "explain", text: d.guideline.explanation_text })) : null,
    factsUsed(d.facts_used),
    d.explanation.length ? el("div", {}, el("div", { class: "section-title", text: "模型调整构成（月）" }), contributionTable(d.explanation)) : null,
    el("div", { class: "section-title", text: `类案参考（${d.similar_cases.length} 件）` }),
    similarTable(d.similar_cases),
    el("div", { class: "two-col" },
      el("div", {}, el("div", { class: "section-title", text: "各省份同类案件刑期中位数" }), el("div", { class: "chart" }, provinceChart(d))),
      el("div", {}, el("div", { class: "section-title", text: "同类案件统计" }), cohortText(d.cohort)),
    ),
    decisionForm(d, requestId),
  );
  return el("article", { class: "card", "data-defendant": d.name }, head, body);
}

// 法定刑幅度 that no fact decides (a tier_undetermined warning), one read from the facts (…数额巨大，其行为…),
// or one stated earlier: the prosecutor picks the tier per charge from the served rule set
// (GET /v1/charges/{name}) and asks again; for a tier read from the facts, "none" means the quantities decide.
function tierChooser(d) {
  const node = formNodeOf(d.name);
  const stated = node ? statedTiers(node) : {};
  const read = Object.fromEntries(((d.facts_used || {}).stated_tiers || [])
    .filter((t) => t.source === "extracted").map((t) => [t.charge, t.tier]));
  const open = d.warnings.some((w) => w.code === "tier_undetermined") || Object.keys(read).length > 0;
  if (!node || (!open && !Object.keys(stated).length)) return null;
  const box = el("div", { class: "tier-chooser" }, el("div", { class: "section-title", text: "法定刑幅度认定" }));
  const rows = el("div", { class: "tier-rows" });
  const apply = el("button", { type: "button", class: "btn small", text: "按所选幅度重新计算", disabled: true });
  box.append(rows, apply);
  const selects = [];
  const seen = new Set();
  (async () => {
    for (const charge of d.charges) {
      let info;
      try { info = await api(`/v1/charges/${encodeURIComponent(charge)}`); } catch { continue; }
      if (seen.has(info.name) || !(charge in read || info.tiers.some((t) => t.selected_by === "statement"))) continue;
      seen.add(info.name);
      const select = el("select", { class: "tier-select", "data-charge": info.name },
        el("option", { value: "", text: charge in read ? "按数量事实认定（不采用案情写明的幅度）" : "按案件事实认定" }),
        info.tiers.map((t) => el("option", { value: t.label, text: `${t.label}（${t.range_text}）` })));
      select.value = stated[info.name] || read[charge] || "";
      selects.push(select);
      rows.append(el("label", { class: "field" }, `${info.name}罪`, select));
    }
    apply.disabled = !selects.length;
  })();
  apply.addEventListener("click", () => {
    const tiers = {};
    for (const s of selects) if (s.value) tiers[s.dataset.charge] = s.value;
    setStatedTiers(node, tiers, true);
    document.getElementById("case-form").requestSubmit();
  });
  return box;
}

function kpi(label, value, hint, accent) {
  return el("div", { class: "kpi" }, el("div", { class: "label", text: label }), el("div", { class: accent ? "value accent" : "value", text: value }), el("div", { class: "hint", text: hint }));
}

function rangeBar(d) {
  const W = 640, H = 98, L = 20, R = 20;
  const st = d.statutory || {};
  const g = d.guideline, r = d.range;
  const lo = Math.min(st.min_months ?? r.low_months, r.low_months, g.low_months);
  let hi = st.max_months ?? Math.max(r.high_months, g.high_months) * 1.4;
  hi = Math.max(hi, r.high_months, g.high_months, lo + 1);
  const x = (m) => L + ((m - lo) / (hi - lo)) * (W - L - R);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "建议区间与法定刑幅度" });
  root.append(svg("rect", { x: L, y: 30, width: W - L - R, height: 22, fill: "#f6f7f9", rx: 3 }));
  // The statutory tier as its own band: the axis may reach below it (a learned low under the floor).
  const stLo = st.min_months ?? null, stHi = st.max_months ?? hi;
  if (stLo !== null) root.append(svg("rect", { class: "statutory", x: x(stLo), y: 30, width: Math.max(2, x(stHi) - x(stLo)), height: 22, fill: "#e3e8ef", rx: 3 }));
  root.append(svg("rect", { x: x(g.low_months), y: 30, width: Math.max(2, x(g.high_months) - x(g.low_months)), height: 22, fill: "none", stroke: "#7a8aa3", "stroke-dasharray": "4 3" }));
  root.append(svg("rect", { x: x(r.low_months), y: 34, width: Math.max(3, x(r.high_months) - x(r.low_months)), height: 14, fill: "#2f5fa7", rx: 2 }));
  root.append(svg("line", { x1: x(r.point_months), x2: x(r.point_months), y1: 24, y2: 58, stroke: "#b3261e", "stroke-width": 3 }));
  root.append(svg("text", { x: x(r.point_months), y: 18, "text-anchor": "middle", "font-size": 12, fill: "#b3261e" }, months(r.point_months)));
  if (stLo !== null) {
    root.append(svg("text", { x: x(stLo), y: 74, "font-size": 11, fill: "#5f6b7a", "text-anchor": x(stLo) > L + 40 ? "middle" : "start" }, `法定刑 ${months(stLo)}`));
    root.append(svg("text", { x: x(stHi), y: 74, "font-size": 11, fill: "#5f6b7a", "text-anchor": "end" }, st.max_months ? months(stHi) : `${months(stHi)}以上`));
  } else {
    root.append(svg("text", { x: L, y: 74, "font-size": 11, fill: "#5f6b7a" }, months(lo)));
    root.append(svg("text", { x: W - R, y: 74, "font-size": 11, fill: "#5f6b7a", "text-anchor": "end" }, `${months(hi)}以上`));
  }
  root.append(svg("text", { x: W / 2, y: 92, "font-size": 11, fill: "#5f6b7a", "text-anchor": "middle" }, "■ 模型区间   ┆ 指导意见区间   ▍点估计   ░ 法定刑幅度"));
  return root;
}

function guidelineTable(g) {
  const rows = g.steps.map((s) => el("tr", {},
    el("td", { class: "nowrap", text: s.stage_label }), el("td", { text: s.rule }), el("td", { class: "basis", text: s.basis }),
    el("td", { class: "num", text: s.ratio === null || s.ratio === undefined ? "" : `${s.ratio > 0 ? "+" : ""}${Math.round(s.ratio * 100)}%` }),
    el("td", { class: "num", text: s.months === null || s.months === undefined ? "" : `${s.months > 0 ? "+" : ""}${s.months.toFixed(1)}` }),
    el("td", { class: "num", text: months(s.value_months) }),
  ));
  rows.push(el("tr", {}, el("td", { text: "结果" }), el("td", { text: "指导意见区间" }), el("td", { text: "" }), el("td", {}),
    el("td", {}), el("td", { class: "num", text: `${months(g.low_months)}–${months(g.high_months)}` })));
  return el("table", {}, el("thead", {}, el("tr", {}, ["步骤", "规则", "依据", "比例", "月数", "累计"].map((h, i) => el("th", { class: i >= 3 ? "num" : null, text: h })))), el("tbody", {}, rows));
}

function factsUsed(f) {
  const tags = f.circumstances.map((c) => el("span", { class: c.evidence ? "tag evidence" : "tag", title: c.evidence ? `原文：“${c.evidence.text}”` : SOURCE_LABEL[c.source] }, `${c.label}（${SOURCE_LABEL[c.source]}）`));
  // Facts that select a heavier tier (入户抢劫, 轮奸…): shown first, as the tier rests on them.
  const aggravations = (f.aggravations || []).map((a) => el("span", { class: a.evidence ? "tag evidence aggravation" : "tag aggravation", title: a.evidence ? `原文：“${a.evidence.text}”` : SOURCE_LABEL[a.source] }, `加重：${a.label}（${SOURCE_LABEL[a.source]}）`));
  // Tiers taken as stated (录入, or read from the facts: …数额巨大，其行为…): they override the quantities.
  const tiers = (f.stated_tiers || []).map((t) => el("span", { class: t.evidence ? "tag evidence stated-tier" : "tag stated-tier", title: t.evidence ? `原文：“${t.evidence.text}”` : SOURCE_LABEL[t.source] }, `法定刑幅度：${t.charge}·${t.tier}（${SOURCE_LABEL[t.source]}）`));
  const q = f.quantities || {};
  const amount = q.amount_yuan ? el("span", { class: q.amount_yuan.evidence ? "tag evidence" : "tag", title: q.amount_yuan.evidence ? `原文：“${q.amount_yuan.evidence.text}”` : "" }, `数额 ${yuan(q.amount_yuan.value)}`) : null;
  // 数罪: a charge priced with an amount of its own (分罪数额, 录入 or told with the charge's own act).
  const chargeAmounts = (f.charge_quantities || []).filter((c) => c.quantities.amount_yuan).map((c) => {
    const a = c.quantities.amount_yuan;
    return el("span", { class: a.evidence ? "tag evidence charge-amount" : "tag charge-amount", title: a.evidence ? `原文：“${a.evidence.text}”` : SOURCE_LABEL[c.source] }, `${c.charge}数额 ${yuan(a.value)}（${SOURCE_LABEL[c.source]}）`);
  });
  return el("div", {},
    el("div", { class: "section-title", text: "认定的量刑事实" }),
    el("div", {},
      f.unit ? el("span", { class: "tag", title: "刑法第三十一条" }, `被告单位（${SOURCE_LABEL[f.unit_source]}）`) : null,
      el("span", { class: f.role_evidence ? "tag evidence" : "tag", title: f.role_evidence ? `原文：“${f.role_evidence.text}”` : SOURCE_LABEL[f.role_source] }, `${f.role_label}（${SOURCE_LABEL[f.role_source]}）`),
      tiers, amount, chargeAmounts, aggravations, tags.length ? tags : el("span", { class: "tag", text: "无其他量刑情节" })),
  );
}

function contributionTable(items) {
  // The group code (c.group) is for API clients; the page shows the Chinese label only.
  return el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "项目" }), el("th", { class: "num", text: "月" }))),
    el("tbody", {}, items.map((c) => el("tr", { title: c.group }, el("td", { text: c.label }), el("td", { class: "num", text: `${c.months > 0 ? "+" : ""}${c.months.toFixed(1)}` })))));
}

function similarTable(cases) {
  if (!cases.length) return el("p", { class: "placeholder", text: "没有找到类案。" });
  return el("table", { class: "similar" },
    el("thead", {}, el("tr", {}, ["法院/案号", "省份", "日期", "罪名", "被告人", "判决结果", "相似度"].map((h, i) => el("th", { class: i === 6 ? "num" : null, text: h })))),
    el("tbody", {}, cases.map((c) => el("tr", {},
      el("td", {}, c.court || c.case_id, c.synthetic ? el("span", { class: "tag synthetic", title: "演示语料，非真实判决" }, "合成") : null),
      el("td", { class: "nowrap", text: c.province_name || PROVINCE_NAME[c.province] || c.province || "—" }),
      el("td", { class: "nowrap", text: c.date || "—" }),
      el("td", { text: c.charges.join("、") }),
      el("td", { class: "nowrap", text: c.defendant }),
      el("td", {}, c.sentence_text || "—", c.matched.length ? el("div", { class: "matched", text: c.matched.join("；") }) : null),
      el("td", { class: "num", text: c.score.toFixed(2) }),
    ))));
}

function provinceChart(d) {
  let rows = (d.cohort && d.cohort.by_province || []).filter((p) => p.reported && p.median_months !== null && p.median_months !== undefined)
    .map((p) => ({ name: p.province_name || PROVINCE_NAME[p.province] || p.province || "未知", value: p.median_months, n: p.n }));
  if (!rows.length) {
    const groups = {};
    for (const c of d.similar_cases) {
      if (!c.sentence || !c.province) continue;
      const m = c.sentence.months || 0;
      (groups[c.province] = groups[c.province] || []).push(m);
    }
    rows = Object.entries(groups).map(([p, ms]) => {
      ms.sort((a, b) => a - b);
      return { name: PROVINCE_NAME[p] || p, value: ms[Math.floor(ms.length / 2)], n: ms.length };
    });
  }
  rows.sort((a, b) => b.value - a.value);
  rows = rows.slice(0, 12);
  const W = 420, rowH = 20, L = 64, R = 70, H = Math.max(40, rows.length * rowH + 10);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "各省份刑期中位数" });
  if (!rows.length) {
    root.append(svg("text", { x: 4, y: 20, "font-size": 12, fill: "#5f6b7a" }, "暂无可比较的分省数据"));
    return root;
  }
  const max = Math.max(...rows.map((r) => r.value), 1);
  rows.forEach((r, i) => {
    const y = 5 + i * rowH;
    root.append(svg("text", { x: L - 6, y: y + 13, "text-anchor": "end", "font-size": 12, fill: "#1f2933" }, r.name));
    root.append(svg("rect", { x: L, y: y + 3, width: Math.max(2, (r.value / max) * (W - L - R)), height: 13, fill: "#2f5fa7", rx: 2 }));
    root.append(svg("text", { x: L + Math.max(2, (r.value / max) * (W - L - R)) + 5, y: y + 13, "font-size": 11, fill: "#5f6b7a" }, `${months(r.value)}（${r.n}件）`));
  });
  return root;
}

function cohortText(c) {
  if (!c) return null;
  const parts = [`同类案件 ${c.n} 件`];
  if (c.reported) {
    if (c.median_months !== null && c.median_months !== undefined) parts.push(`中位数 ${months(c.median_months)}`);
    if (c.q1_months !== null && c.q1_months !== undefined) parts.push(`四分位 ${months(c.q1_months)}–${months(c.q3_months)}`);
    if (c.share_non_custodial !== null && c.share_non_custodial !== undefined) parts.push(`缓刑及非监禁 ${pct(c.share_non_custodial)}`);
  } else if (c.reason) {
    parts.push(c.reason);
  }
  const excluded = Object.entries(c.excluded || {}).filter(([, n]) => n > 0).map(([k, n]) => `${({ life: "无期徒刑", death: "死刑" })[k] || k} ${n} 件未计入刑期统计`);
  return el("p", { class: "cohort" }, el("span", { class: "cohort-def", text: `口径：${c.definition_text}` }), el("br"), parts.concat(excluded).join(" · "));
}

function decisionForm(d, requestId) {
  const kind = el("select", { class: "dc-kind" }, [["fixed_term", "有期徒刑"], ["detention", "拘役"], ["surveillance", "管制"], ["fine_only", "单处罚金"], ["exempt", "免予刑事处罚"]].map(([v, t]) => el("option", { value: v, text: t })));
  if (d.facts_used.unit) kind.value = "fine_only";
  const m = el("input", { type: "number", min: 1, max: 300, class: "dc-months", value: Math.round(d.range.point_months) || "" });
  const prob = el("input", { type: "number", min: 0, max: 60, class: "dc-probation", placeholder: "不适用" });
  const fine = el("input", { type: "number", min: 0, class: "dc-fine", value: d.fine_yuan ? Math.round(d.fine_yuan) : "" });
  const reason = el("input", { type: "text", class: "dc-reason", placeholder: "偏离建议区间时必填" });
  const out = el("div", { class: "decision-result" });
  const btn = el("button", { type: "button", class: "btn small primary", text: "记录最终量刑建议" });
  btn.addEventListener("click", async () => {
    const sentence = { kind: kind.value };
    if (["fixed_term", "detention", "surveillance"].includes(kind.value)) sentence.months = Number(m.value);
    if (prob.value && Number(prob.value) > 0) sentence.probation_months = Number(prob.value);
    if (fine.value !== "") sentence.fine_yuan = Number(fine.value);
    try {
      const res = await api(`/v1/recommendations/${encodeURIComponent(requestId)}/decision`, { defendant: d.name, sentence, reason: reason.value || null });
      out.className = "decision-result ok";
      out.textContent = `已记录：${res.sentence_text}` + (res.departure ? `（偏离：${res.departure}）` : "（在建议范围内）");
    } catch (e) {
      out.className = "decision-result error";
      out.textContent = e.message;
    }
  });
  return el("details", {}, el("summary", { text: "记录检察官最终量刑建议（写入审计记录）" }),
    el("div", { class: "decision" },
      el("label", { class: "field" }, "刑种", kind), el("label", { class: "field" }, "刑期（月）", m),
      el("label", { class: "field" }, "缓刑考验期（月）", prob), el("label", { class: "field" }, "罚金（元）", fine),
      el("label", { class: "field grow" }, "理由", reason), btn),
    out);
}

// --------------------------------------------------------------------------- start

function loadExample() {
  document.getElementById("facts").value = EXAMPLE.facts;
  document.getElementById("court").value = EXAMPLE.court;
  document.getElementById("province").value = EXAMPLE.province;
  document.getElementById("defendants").replaceChildren();
  EXAMPLE.defendants.forEach(addDefendant);
}

document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("province");
  for (const [code, name] of PROVINCES) select.append(el("option", { value: code, text: name }));
  initKey();
  addDefendant();
  document.getElementById("add-defendant").addEventListener("click", () => addDefendant());
  document.getElementById("load-example").addEventListener("click", loadExample);
  document.getElementById("case-form").addEventListener("submit", submitCase);
  checkReady();
});
