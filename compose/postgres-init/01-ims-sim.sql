-- The simulated IMS's own database (ims-sim --database-url).
CREATE DATABASE ims_sim OWNER hes;
