"""What the report shows: Q6's numbers (`q6`) and the analyses' (`analysis`), figures (`figures`, drawing
only), the gallery (`gallery`), and the HTML/PDF machinery (`render`, `assemble`)."""
