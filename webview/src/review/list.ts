import { el } from '../shared/bridge';
import type { ListItem, ListPage } from './protocol';

/**
 * The trajectory list, virtualised: only the rows in view exist in the DOM, and pages of rows are
 * fetched as they scroll into view, so a project with a million steps opens as fast as a small one.
 */
const ROW_HEIGHT = 46;
const PAGE = 200;

export class TrajectoryList {
  private readonly viewport: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly rows: HTMLElement;
  private pages = new Map<number, ListItem[]>();
  private loading = new Set<number>();
  private total = 0;
  private selected = -1;
  private generation = 0;

  constructor(
    container: HTMLElement,
    private readonly fetchPage: (offset: number, limit: number, afterSeq?: number) => Promise<ListPage>,
    private readonly onSelect: (item: ListItem, index: number) => Promise<void>,
  ) {
    this.viewport = el('div', 'list-viewport');
    this.viewport.tabIndex = 0;
    this.viewport.setAttribute('role', 'listbox');
    this.viewport.setAttribute('aria-label', 'Trajectories');
    this.spacer = el('div', 'list-spacer');
    this.rows = el('div', 'list-rows');
    this.spacer.append(this.rows);
    this.viewport.append(this.spacer);
    container.append(this.viewport);
    this.viewport.addEventListener('scroll', () => this.render());
    new ResizeObserver(() => this.render()).observe(this.viewport);
    this.rows.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('[data-index]');
      if (row) void this.select(Number(row.dataset.index));
    });
  }

  /** Starts over (new filter / search / round) with the first page already fetched. */
  reset(first: ListPage): void {
    this.generation++;
    this.pages = new Map([[0, first.items]]);
    this.loading.clear();
    this.total = first.total;
    this.selected = -1;
    this.spacer.style.height = `${this.total * ROW_HEIGHT}px`;
    this.viewport.scrollTop = 0;
    this.render();
  }

  /** Re-fetches the loaded pages (after a change), keeping the scroll position and selection. */
  async refresh(): Promise<void> {
    const generation = ++this.generation;
    const loaded = [...this.pages.keys()];
    const fresh = await Promise.all(loaded.map((p) => this.fetchPage(p * PAGE, PAGE)));
    if (generation !== this.generation) return;
    this.pages = new Map(loaded.map((p, i) => [p, fresh[i]?.items ?? []]));
    this.total = fresh[0]?.total ?? this.total;
    this.spacer.style.height = `${this.total * ROW_HEIGHT}px`;
    this.render();
  }

  get count(): number {
    return this.total;
  }

  get selectedIndex(): number {
    return this.selected;
  }

  itemAt(index: number): ListItem | undefined {
    return this.pages.get(Math.floor(index / PAGE))?.[index % PAGE];
  }

  async select(index: number): Promise<void> {
    if (index < 0 || index >= this.total) return;
    this.selected = index;
    const top = index * ROW_HEIGHT;
    if (top < this.viewport.scrollTop) this.viewport.scrollTop = top;
    else if (top + ROW_HEIGHT > this.viewport.scrollTop + this.viewport.clientHeight) this.viewport.scrollTop = top + ROW_HEIGHT - this.viewport.clientHeight;
    await this.ensurePage(Math.floor(index / PAGE));
    this.render();
    const item = this.itemAt(index);
    if (item) await this.onSelect(item, index);
  }

  /** Selects the trajectory if it is in a loaded page; false when it is not (filtered out or not loaded). */
  async selectById(id: number): Promise<boolean> {
    for (const [page, items] of this.pages) {
      const i = items.findIndex((item) => item.id === id);
      if (i >= 0) {
        await this.select(page * PAGE + i);
        return true;
      }
    }
    return false;
  }

  private async ensurePage(page: number): Promise<void> {
    if (this.pages.has(page) || this.loading.has(page)) return;
    this.loading.add(page);
    const generation = this.generation;
    try {
      // Scrolling on from a loaded page continues after its last row (keyset); a jump uses the offset.
      const before = this.pages.get(page - 1);
      const last = before && before.length === PAGE ? before[PAGE - 1] : undefined;
      const result = await this.fetchPage(page * PAGE, PAGE, last?.seq);
      if (generation === this.generation) this.pages.set(page, result.items);
    } finally {
      this.loading.delete(page);
    }
    if (generation === this.generation) this.render();
  }

  private render(): void {
    const height = this.viewport.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / ROW_HEIGHT) - 5);
    const last = Math.min(this.total, Math.ceil((this.viewport.scrollTop + height) / ROW_HEIGHT) + 5);
    this.rows.style.transform = `translateY(${first * ROW_HEIGHT}px)`;
    const nodes: HTMLElement[] = [];
    for (let i = first; i < last; i++) {
      const item = this.itemAt(i);
      if (!item) void this.ensurePage(Math.floor(i / PAGE));
      nodes.push(this.row(i, item));
    }
    this.rows.replaceChildren(...nodes);
  }

  private row(index: number, item: ListItem | undefined): HTMLElement {
    const row = el('div', `list-row${index === this.selected ? ' selected' : ''}`);
    row.dataset.index = String(index);
    row.setAttribute('role', 'option');
    row.setAttribute('aria-selected', String(index === this.selected));
    if (!item) {
      row.append(el('span', 'row-preview muted', 'loading…'));
      return row;
    }
    const head = el('div', 'row-head');
    head.append(el('span', 'row-id', `#${item.id}`), el('span', `row-status status-${statusClass(item)}`, statusText(item)));
    if (item.disagreement) head.append(el('span', 'row-flag', 'disagree'));
    row.append(head, el('div', 'row-preview', item.preview));
    row.title = item.preview;
    return row;
  }
}

function statusClass(item: ListItem): string {
  if (item.override) return 'overridden';
  return item.autoStatus === 'pair' ? 'auto' : item.autoStatus === 'skip' ? 'skipped' : 'none';
}

function statusText(item: ListItem): string {
  if (item.override) return `✓ ${item.override}`;
  if (item.autoStatus === 'pair') return `auto pair${item.margin !== null ? ` · margin ${item.margin.toFixed(2)}` : ''}`;
  if (item.autoStatus === 'skip') return 'skipped';
  return 'not selected';
}
