// @ts-check
// Why this file exists: the chain explorer. Lists blocks newest first, shows one block's
// header and commit certificate (#/explorer/12), and verifies the whole chain against the
// genesis keys range by range, with a progress bar.

import { get, query } from './api.js';
import {
  h, put, card, button, busy, notice, errorNotice, loading, empty, table, facts, mono, replicas,
  pageTitle, fmtTime, shortHash,
} from './ui.js';

/** @typedef {import('./api.js').BlockSummary} BlockSummary */
/** @typedef {import('./app.js').ScreenContext['navigate']} Navigate */

const PAGE = 20;
const VERIFY_STEP = 200;

/**
 * @param {HTMLElement} main
 * @param {import('./app.js').ScreenContext} ctx
 */
export function render(main, { args, navigate }) {
  const height = args[0] !== undefined ? Number(args[0]) : null;
  let stopped = false;
  const left = h('div', { class: 'space-y-6 lg:col-span-2', id: 'explorer-main' });
  main.append(
    pageTitle(height === null ? 'Chain explorer' : `Block #${height}`, 'The ledger shared by the participating organisations'),
    h('div', { class: 'grid grid-cols-1 gap-6 lg:grid-cols-3' },
      left,
      h('div', { class: 'space-y-6' }, chainHeadCard(), verifyCard(() => stopped))));

  if (height !== null && Number.isInteger(height) && height > 0) left.append(blockDetail(height, navigate));
  else left.append(blockList());

  return () => {
    stopped = true;
  };
}

/** The chain's height, view and head hash (public: no token needed). */
function chainHeadCard() {
  const box = h('div', { id: 'chain-head' }, loading());
  const msg = notice();
  (async () => {
    try {
      /** @type {import('./api.js').ChainHead} */
      const hd = await get('/api/chain/head', { auth: false });
      put(box, facts([
        ['Height', h('span', { class: 'text-lg font-semibold' }, String(hd.height))],
        ['View', String(hd.view)],
        ['Head hash', mono(hd.hash)],
      ], 'grid grid-cols-1 gap-x-6 gap-y-2 sm:grid-cols-3'));
    } catch (e) {
      box.replaceChildren();
      msg.error(e);
    }
  })();
  return card('Chain head', msg.el, box);
}

// ---- verify -----------------------------------------------------------------------

/**
 * Verify the chain from block 1 to the head, VERIFY_STEP blocks per request, with a
 * progress bar; stops quietly when the screen is left.
 * @param {() => boolean} isStopped
 */
function verifyCard(isStopped) {
  const verifyBtn = button('Verify chain', { id: 'verify-chain' });
  const bar = h('div', { class: 'h-full rounded-full bg-teal-600 transition-[width]' });
  const progress = h('div', {
    id: 'verify-progress', role: 'progressbar', 'aria-label': 'Chain verification', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0',
    class: 'mt-4 hidden h-3 w-full overflow-hidden rounded-full bg-slate-200',
  }, bar);
  const verifyText = h('p', { id: 'verify-status', class: 'mt-2 text-sm text-slate-700', 'aria-live': 'polite' });
  const verifyMsg = notice();
  /** @param {number} pct */
  function setProgress(pct) {
    const p = Math.max(0, Math.min(100, Math.floor(pct)));
    bar.style.width = `${p}%`;
    progress.setAttribute('aria-valuenow', String(p));
  }
  verifyBtn.addEventListener('click', () => busy(verifyBtn, async () => {
    verifyMsg.clear();
    progress.classList.remove('hidden');
    setProgress(0);
    let from = 1;
    try {
      for (;;) {
        /** @type {import('./api.js').VerifyResult} */
        const r = await get(`/api/chain/verify${query({ from, count: VERIFY_STEP })}`);
        if (isStopped()) return;
        setProgress((r.verified_to / Math.max(r.head, 1)) * 100);
        verifyText.textContent = `Verified blocks 1 to ${r.verified_to} of ${r.head}`;
        if (!r.ok) {
          verifyMsg.show('error', `Verification failed: ${r.error || `block ${r.verified_to + 1} is invalid`}`);
          return;
        }
        if (r.verified_to >= r.head) break;
        if (r.verified_to < from) {
          verifyMsg.show('error', `Verification stopped at block ${from}: no progress.`);
          return;
        }
        from = r.verified_to + 1;
      }
      setProgress(100);
      verifyText.textContent = `${verifyText.textContent} — 100%`;
      verifyMsg.show('success', 'The chain is intact: every hash link, Merkle root and commit certificate checks out against the genesis keys.');
    } catch (e) {
      verifyMsg.error(e);
    }
  }, 'Verifying…'));
  return card('Verify the chain',
    h('p', { class: 'text-sm text-slate-700' }, 'Checks every block: the link to the previous block, the Merkle root of its transactions, and the replicas’ signatures.'),
    h('div', { class: 'mt-4' }, verifyBtn), progress, verifyText, verifyMsg.el);
}

// ---- blocks -----------------------------------------------------------------------

/**
 * One block's header and who signed it, with links to its neighbours.
 * @param {number} height
 * @param {Navigate} navigate
 */
function blockDetail(height, navigate) {
  const box = h('div', {}, loading());
  const allBlocks = () => button('All blocks', { variant: 'secondary', small: true, onClick: () => navigate('explorer') });
  /** @type {Promise<BlockSummary>} */
  const answer = get(`/api/blocks/${height}`);
  answer.then((b) => {
    put(box,
      facts([
        ['Height', String(b.height)],
        ['Committed at', fmtTime(b.timestamp_ms)],
        ['Hash', mono(b.hash)],
        ['Previous hash', mono(b.previous_hash)],
        ['Merkle root', mono(b.merkle_root)],
        ['View', String(b.view)],
        ['Proposer', `Replica ${b.proposer}`],
        ['Signed by', replicas(b.signers)],
        ['Transactions', String(b.transactions)],
        ['Records', String(b.records)],
      ]),
      h('div', { class: 'mt-5 flex flex-wrap gap-3' },
        b.height > 1 ? button('← Previous block', { variant: 'secondary', small: true, onClick: () => navigate('explorer', b.height - 1) }) : null,
        button('Next block →', { variant: 'secondary', small: true, onClick: () => navigate('explorer', b.height + 1) }),
        allBlocks()));
  }).catch((e) => {
    put(box, errorNotice(e), h('p', { class: 'mt-3' }, allBlocks()));
  });
  return card('Block detail', box);
}

/** The blocks, newest first, a page at a time. */
function blockList() {
  const listBox = h('div', { id: 'blocks' }, loading());
  const more = button('Load older blocks', { variant: 'secondary', small: true, id: 'blocks-more' });
  const moreWrap = h('div', { class: 'mt-4 hidden' }, more);
  const listMsg = notice();
  /** @type {BlockSummary[]} */
  const rows = [];
  const draw = () => put(listBox, rows.length ? table('Blocks, newest first', [
    ['Height', (b) => h('a', { href: `#/explorer/${b.height}`, class: 'font-semibold text-teal-800 underline underline-offset-2', 'aria-label': `Block ${b.height}` }, `#${b.height}`)],
    ['Committed', (b) => fmtTime(b.timestamp_ms)],
    ['Hash', (b) => h('span', { class: 'font-mono text-xs', title: b.hash }, shortHash(b.hash))],
    ['Txs', (b) => String(b.transactions)],
    ['Records', (b) => String(b.records)],
    ['Proposer', (b) => `R${b.proposer}`],
    ['Signers', (b) => replicas(b.signers)],
  ], rows) : empty('No blocks yet.'));
  /** @param {number} [before] the height below which to list (none: from the head) */
  async function page(before) {
    try {
      /** @type {BlockSummary[]} */
      const list = await get(`/api/blocks${query({ before, limit: PAGE })}`);
      rows.push(...list);
      draw();
      const lowest = rows.length ? rows[rows.length - 1].height : 1;
      moreWrap.classList.toggle('hidden', lowest <= 1 || list.length < PAGE);
    } catch (e) {
      listBox.replaceChildren();
      listMsg.error(e);
    }
  }
  more.addEventListener('click', () => busy(more, () => page(rows[rows.length - 1].height - 1), 'Loading…'));
  page(undefined);
  return card('Blocks', listMsg.el, listBox, moreWrap);
}
