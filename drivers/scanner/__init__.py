"""Barcode and QR scanners: camera (OpenCV + zxing-cpp or zbar), serial modules, keyboard wedges."""
