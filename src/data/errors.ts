/** An image that cannot be used, with the file it came from and why: what every loader reports. */
export class ImageError extends Error {
  override name = 'ImageError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** A dataset folder that is missing, empty or laid out wrongly. */
export class DatasetError extends Error {
  override name = 'DatasetError';
}
