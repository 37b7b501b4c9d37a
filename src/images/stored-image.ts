/** One entry of the local image store's index (images/catalog.json), shared by the store and its rebuild. */
export interface StoredImage {
  name: string;
  path: string;
  format: string;
  /** "sha256:<hex>" of the stored file */
  checksum: string;
  /** bytes on disk */
  size: number;
  /** where it came from: a URL, or "file:<path>" for an import */
  source: string;
  /** ISO time */
  addedAt: string;
  /** the publisher's checksum the download was verified against (may be sha512), if any */
  verifiedAgainst?: string | null;
}
