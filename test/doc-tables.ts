/**
 * The names in the first column of the markdown table after `marker` in `doc`: every
 * `code span` in the cell (a cell may name several), without label lists (`name{label}`).
 */
export function tableNames(doc: string, marker: string): string[] {
  const start = doc.indexOf(marker);
  if (start === -1) throw new Error(`marker ${marker} missing`);
  const names: string[] = [];
  for (const row of doc.slice(start).split('\n').slice(3)) {
    if (!row.startsWith('|')) break;
    for (const [, name] of row.split('|')[1]!.matchAll(/`([^`]+)`/g)) names.push(name!.replace(/\{.*$/, ''));
  }
  return names;
}
